"""Fixtures of the browser target: exported sites of the shipped default model and of a 3-class model."""
from __future__ import annotations

import os
import shutil

import pytest

from runtime.bundle import default_bundle_path


def exported_site(bundle: str, copy: str) -> str:
    """``export web`` of a copy (in the empty directory ``copy``) of ``bundle``: its site folder."""
    from export.web import export_web

    for name in os.listdir(bundle):
        if os.path.isfile(os.path.join(bundle, name)):
            shutil.copyfile(os.path.join(bundle, name), os.path.join(copy, name))
    export_web(copy)
    return os.path.join(copy, "web")


@pytest.fixture(scope="session")
def default_site(tmp_path_factory) -> str:
    """``export web`` of a copy of the shipped default model (the real IMDB vocabulary)."""
    return exported_site(default_bundle_path(), str(tmp_path_factory.mktemp("default_bundle")))


@pytest.fixture(scope="session")
def three_class_site(three_class_bundle, tmp_path_factory) -> str:
    """``export web`` of a copy of ``three_class_bundle`` (labels alpha, beta, gamma)."""
    return exported_site(three_class_bundle, str(tmp_path_factory.mktemp("three_class_bundle")))
