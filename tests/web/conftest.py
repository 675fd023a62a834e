"""Fixtures of the browser target: the exported site of the shipped default model."""
from __future__ import annotations

import os

import pytest

from runtime.bundle import default_bundle_path


@pytest.fixture(scope="session")
def default_site(tmp_path_factory) -> str:
    """``export web`` of a copy of the shipped default model (the real IMDB vocabulary)."""
    import shutil

    from export.web import export_web

    bundle = str(tmp_path_factory.mktemp("default_bundle"))
    for name in os.listdir(default_bundle_path()):
        shutil.copyfile(os.path.join(default_bundle_path(), name), os.path.join(bundle, name))
    export_web(bundle)
    return os.path.join(bundle, "web")
