"""trainer.data: every source form, the deterministic order, archive safety, the download cache."""
from __future__ import annotations

import argparse
import gzip
import io
import os
import random
import shutil
import tarfile
import urllib.request

import numpy as np
import pytest

from runtime.files import sha256_file
from tests.conftest import SHARED_ARCHIVE
from trainer import data as data_mod
from trainer.data import (OFFICIAL_SHA256, OFFICIAL_URL, DataError, add_data_argument, download,
                          load_imdb, recorded_source, resolve_source)


# (split, label) -> {file name: raw bytes}; names chosen so string order != numeric order.
REVIEWS = {
    ("train", "neg"): {"3_1.txt": b"bad", "10_2.txt": b"awful <br />plot"},
    ("train", "pos"): {"2_9.txt": b"great", "1_10.txt": b"loved it"},
    ("test", "neg"): {"0_3.txt": b"caf\xe9 boring", "7_4.txt": b"meh"},
    ("test", "pos"): {"5_8.txt": b"fine", "4_7.txt": "nice \u00e9t\u00e9".encode()},
}
# Sorted by (label neg then pos, file name); invalid UTF-8 becomes U+FFFD.
TRAIN_TEXTS = ["awful <br />plot", "bad", "loved it", "great"]
TEST_TEXTS = ["caf\ufffd boring", "meh", "nice \u00e9t\u00e9", "fine"]
LABELS = [0, 0, 1, 1]
# Things the original archive also holds, all to be ignored.
NOISE = {
    "README": b"readme",
    "imdb.vocab": b"the\nand\n",
    "train/unsup/0_0.txt": b"unlabelled",
    "train/labeledBow.feat": b"0 0:1",
    "train/urls_pos.txt": b"http://example.com",
    "test/pos/4_7.feat": b"not a review",
}


def _review_files(drop=()):
    return {f"{split}/{label}/{name}": raw
            for (split, label), files in REVIEWS.items() if f"{split}/{label}" not in drop
            for name, raw in files.items()}


def _add(tar, name, raw=b"", type_=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = type_, linkname, len(raw)
    tar.addfile(info, io.BytesIO(raw) if type_ == tarfile.REGTYPE else None)


def make_tar(path, prefix="aclImdb/", drop=(), noise=True, extra=(), mode="w:gz"):
    """Write reviews (+ noise) in reverse order, so the loader has to sort."""
    files = {**_review_files(drop), **(NOISE if noise else {})}
    with tarfile.open(path, mode) as tar:
        for name, raw in reversed(list(files.items())):
            _add(tar, prefix + name, raw)
        for args in extra:
            _add(tar, *args)
    return str(path)


def make_folder(root, drop=()):
    for name, raw in {**_review_files(drop), **NOISE}.items():
        path = root / "aclImdb" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
    return root / "aclImdb"


def assert_expected(imdb):
    assert imdb.train_texts == TRAIN_TEXTS
    assert imdb.test_texts == TEST_TEXTS
    for labels in (imdb.train_labels, imdb.test_labels):
        assert labels.dtype == np.int32
        assert labels.tolist() == LABELS


def message(excinfo) -> str:
    return str(excinfo.value)


# ---------------------------------------------------------------- source forms

@pytest.mark.parametrize("prefix", ["aclImdb/", "", "./aclImdb/"])
def test_tar_with_or_without_top_folder(tmp_path, prefix):
    assert_expected(load_imdb(make_tar(tmp_path / "imdb.tar.gz", prefix=prefix)))


def test_plain_tar_and_pathlike(tmp_path):
    assert_expected(load_imdb(tmp_path / make_tar(tmp_path / "imdb.tar", mode="w")))


def test_folder_or_its_parent(tmp_path):
    folder = make_folder(tmp_path)
    assert_expected(load_imdb(folder))
    assert_expected(load_imdb(str(tmp_path)))


def test_tar_and_folder_give_identical_data(tmp_path):
    from_tar = load_imdb(make_tar(tmp_path / "imdb.tar.gz"))
    from_folder = load_imdb(make_folder(tmp_path / "dir"))
    assert from_tar.train_texts == from_folder.train_texts
    assert from_tar.test_texts == from_folder.test_texts
    np.testing.assert_array_equal(from_tar.train_labels, from_folder.train_labels)
    np.testing.assert_array_equal(from_tar.test_labels, from_folder.test_labels)


def test_noise_is_ignored(tmp_path):
    # Same result with and without unsup/, .feat, urls_*.txt, README, imdb.vocab.
    with_noise = load_imdb(make_tar(tmp_path / "a.tar.gz", noise=True))
    assert_expected(with_noise)
    assert_expected(load_imdb(make_tar(tmp_path / "b.tar.gz", noise=False)))
    assert "unlabelled" not in with_noise.train_texts


# ---------------------------------------------------------------- source selection

def test_resolve_source_precedence(monkeypatch):
    monkeypatch.delenv("IMDB_DATA", raising=False)
    assert resolve_source(None) == OFFICIAL_URL
    monkeypatch.setenv("IMDB_DATA", "/env/imdb.tar.gz")
    assert resolve_source(None) == "/env/imdb.tar.gz"
    assert resolve_source("/cli/imdb") == "/cli/imdb"


def test_load_uses_imdb_data_env(tmp_path, monkeypatch):
    monkeypatch.setenv("IMDB_DATA", make_tar(tmp_path / "imdb.tar.gz"))
    assert_expected(load_imdb())


def test_default_source_is_the_official_url_with_its_checksum(tmp_path, monkeypatch):
    monkeypatch.delenv("IMDB_DATA", raising=False)
    seen = []

    def fake_fetch(url, dest):
        seen.append(url)
        with open(dest, "wb") as f:
            f.write(b"not the dataset")

    with pytest.raises(DataError) as e:
        load_imdb(cache_dir=tmp_path, fetch=fake_fetch)
    got = data_mod.hashlib.sha256(b"not the dataset").hexdigest()
    assert seen == [OFFICIAL_URL]
    assert message(e) == (f"checksum mismatch for {OFFICIAL_URL}: "
                          f"expected sha256 {OFFICIAL_SHA256}, got {got}")


def test_add_data_argument():
    parser = argparse.ArgumentParser()
    add_data_argument(parser)
    assert parser.parse_args([]).data is None
    assert parser.parse_args(["--data", "x.tar.gz"]).data == "x.tar.gz"
    help_text = parser.format_help()
    assert "IMDB_DATA" in help_text and "--data PATH" in help_text


# ---------------------------------------------------------------- errors

def test_missing_path(tmp_path):
    path = str(tmp_path / "nope.tar.gz")
    with pytest.raises(DataError) as e:
        load_imdb(path)
    assert message(e) == f"IMDB data path does not exist: {path}"


def test_random_bytes(tmp_path):
    path = tmp_path / "random.bin"
    path.write_bytes(b"xx" + random.Random(0).randbytes(4096))
    with pytest.raises(DataError) as e:
        load_imdb(path)
    assert message(e) == f"not an IMDB folder, tar archive or URL: {path}"


def test_fifo_is_not_a_source(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    with pytest.raises(DataError) as e:
        load_imdb(path)
    assert message(e) == f"not an IMDB folder, tar archive or URL: {path}"


@pytest.mark.parametrize("keep", [0.5, 0.9, 12])
def test_truncated_tar_gz(tmp_path, keep):
    path = make_tar(tmp_path / "imdb.tar.gz")
    raw = open(path, "rb").read()
    cut = int(len(raw) * keep) if keep < 1 else keep
    with open(path, "wb") as f:
        f.write(raw[:cut])
    with pytest.raises(DataError) as e:
        load_imdb(path)
    assert message(e) == f"corrupt or truncated archive: {path}"


@pytest.mark.parametrize("compress", [False, True])
def test_tar_cut_at_a_member_boundary(tmp_path, compress):
    # Valid blocks up to the last member's header, no end-of-archive marker: tarfile alone
    # would return every review but one (train/neg still has another, so no "incomplete").
    plain = make_tar(tmp_path / "full.tar", mode="w")
    with tarfile.open(plain) as tar:
        last = tar.getmembers()[-1]
    assert last.name == "aclImdb/train/neg/3_1.txt"
    cut = open(plain, "rb").read()[:last.offset]
    path = tmp_path / ("cut.tar.gz" if compress else "cut.tar")
    path.write_bytes(gzip.compress(cut) if compress else cut)
    with pytest.raises(DataError) as e:
        load_imdb(path)
    assert message(e) == f"corrupt or truncated archive: {path}"


@pytest.mark.parametrize("drop, missing", [
    (("test/neg",), "test/neg"),
    (("train/pos", "test/pos"), "train/pos, test/pos"),
])
def test_incomplete_data(tmp_path, drop, missing):
    path = make_tar(tmp_path / "imdb.tar.gz", drop=drop)
    with pytest.raises(DataError) as e:
        load_imdb(path)
    assert message(e) == f"incomplete IMDB data in {path}: no {missing} reviews"
    folder = make_folder(tmp_path / "dir", drop=drop)
    with pytest.raises(DataError) as e:
        load_imdb(folder)
    assert message(e) == f"incomplete IMDB data in {folder}: no {missing} reviews"


def test_no_reviews_at_all(tmp_path):
    path = make_tar(tmp_path / "imdb.tar.gz", drop=[f"{split}/{label}" for split, label in REVIEWS])
    with pytest.raises(DataError) as e:
        load_imdb(path)
    assert message(e) == (f"no IMDB reviews in {path}: "
                          "expected [aclImdb/]{train,test}/{pos,neg}/*.txt")
    with pytest.raises(DataError) as e:
        load_imdb(tmp_path)  # a folder without train/ or test/
    assert message(e) == (f"no IMDB reviews in {tmp_path}: "
                          "expected [aclImdb/]{train,test}/{pos,neg}/*.txt")


# ---------------------------------------------------------------- archive safety

UNSAFE = [
    (("../evil.txt", b"x"), "'../evil.txt' has a '..' component"),
    (("aclImdb/train/../../evil.txt", b"x"), "'aclImdb/train/../../evil.txt' has a '..' component"),
    (("/abs.txt", b"x"), "'/abs.txt' is an absolute path"),
    (("aclImdb/link", b"", tarfile.SYMTYPE, "/etc/passwd"),
     "'aclImdb/link' is a symlink to '/etc/passwd' (links in an archive are never followed)"),
    (("aclImdb/hard", b"", tarfile.LNKTYPE, "../outside.txt"),
     "'aclImdb/hard' is a hardlink to '../outside.txt' (links in an archive are never followed)"),
    # a link to a file inside the archive is refused too: one policy, no link is followed
    (("aclImdb/train/pos/9_9.txt", b"", tarfile.SYMTYPE, "2_9.txt"),
     "'aclImdb/train/pos/9_9.txt' is a symlink to '2_9.txt' (links in an archive are never followed)"),
    (("aclImdb/null", b"", tarfile.CHRTYPE), "'aclImdb/null' is a device or FIFO"),
]


@pytest.mark.parametrize("member, problem", UNSAFE)
def test_unsafe_member_is_refused(tmp_path, member, problem):
    path = make_tar(tmp_path / "evil.tar.gz", extra=[member])
    with pytest.raises(DataError) as e:
        load_imdb(path)
    assert message(e) == f"unsafe member in {path}: {problem}"


def test_symlink_chain_is_refused_at_its_first_link(tmp_path):
    # Each link looks harmless on its own, but once on disk a/b/c would be the parent of the root.
    chain = [("a", b"", tarfile.DIRTYPE), ("a/b", b"", tarfile.SYMTYPE, ".."),
             ("a/b/c", b"", tarfile.SYMTYPE, "..")]
    path = make_tar(tmp_path / "chain.tar.gz", extra=chain)
    with pytest.raises(DataError) as e:
        load_imdb(path)
    assert message(e) == (f"unsafe member in {path}: 'a/b' is a symlink to '..' "
                          "(links in an archive are never followed)")


def test_oversized_review_is_refused_before_it_is_read(tmp_path):
    # A header claiming a 1 GiB review, in an archive of a few hundred bytes (as a sparse member
    # would be): refused from its header, before any read could allocate 1 GiB.
    path = tmp_path / "huge.tar.gz"
    info = tarfile.TarInfo("aclImdb/train/pos/0_9.txt")
    info.size = 1 << 30
    path.write_bytes(gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT) + b"x" * 512))
    assert path.stat().st_size < 4096
    with pytest.raises(DataError) as e:
        load_imdb(path)
    assert message(e) == (f"unsafe member in {path}: 'aclImdb/train/pos/0_9.txt' is a review of "
                          f"{1 << 30} bytes, over the {1 << 20}-byte cap")


def test_review_over_the_cap_in_a_folder_is_refused(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "dir")
    monkeypatch.setattr(data_mod, "MAX_REVIEW_BYTES", 20)
    big = os.path.join(folder, "train", "pos", "2_9.txt")
    with open(big, "wb") as f:
        f.write(b"y" * 21)
    with pytest.raises(DataError) as e:
        load_imdb(folder)
    assert message(e) == f"review file {big} is over the 20-byte cap"


def test_gzip_bomb_stops_at_the_archive_cap(tmp_path, monkeypatch):
    # 8 MiB of zeros (a few KB compressed) under a 1 MiB cap: refused once the cap is passed.
    path = tmp_path / "bomb.tar.gz"
    info = tarfile.TarInfo("aclImdb/train/unsup/zeros.bin")  # not a review: skipped, but counted
    info.size = 8 << 20
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    assert path.stat().st_size < 64 << 10
    monkeypatch.setattr(data_mod, "MAX_ARCHIVE_BYTES", 1 << 20)
    with pytest.raises(DataError) as e:
        load_imdb(path)
    assert message(e) == (f"{path}: more than {1 << 20} bytes once uncompressed (the cap on an archive's "
                          "size); not an IMDB archive")


def test_source_precedence_and_no_silent_download(monkeypatch, tmp_path):
    monkeypatch.delenv("IMDB_DATA", raising=False)
    assert resolve_source(None, "/recorded") == "/recorded"
    assert resolve_source("given", "/recorded") == "given"
    monkeypatch.setenv("IMDB_DATA", "/env")
    assert resolve_source(None, "/recorded") == "/env"
    monkeypatch.delenv("IMDB_DATA")
    with pytest.raises(DataError, match=r"pass --data PATH"):
        resolve_source(None, None, default=None)
    monkeypatch.chdir(tmp_path)
    assert recorded_source("data/x.tar.gz") == str(tmp_path / "data" / "x.tar.gz")
    assert recorded_source(OFFICIAL_URL) == OFFICIAL_URL


# ---------------------------------------------------------------- download cache

def copying_fetch(calls):
    """A fetch for file:// URLs that records each call."""
    def fetch(url, dest):
        calls.append(url)
        shutil.copyfile(urllib.request.url2pathname(url[len("file://"):]), dest)
    return fetch


def test_file_url_is_cached_and_verified(tmp_path):
    archive = make_tar(tmp_path / "imdb.tar.gz")
    url = f"file://{archive}"
    cache = tmp_path / "cache"
    calls = []
    digest = sha256_file(archive)
    first = load_imdb(url, cache_dir=cache, fetch=copying_fetch(calls), sha256=digest)
    assert_expected(first)
    assert calls == [url]
    cached = list(cache.iterdir())
    assert len(cached) == 1 and cached[0].name.endswith("-imdb.tar.gz")
    assert sha256_file(cached[0]) == digest
    # Second call: served from the cache, still verified, no fetch.
    again = load_imdb(url + f"#sha256={digest}", cache_dir=cache, fetch=copying_fetch(calls))
    assert_expected(again)
    assert calls == [url]


def test_real_urllib_fetch_with_cache_env_and_progress(tmp_path, monkeypatch):
    archive = make_tar(tmp_path / "imdb.tar.gz")
    monkeypatch.setenv("REVIEWKIT_CACHE", str(tmp_path / "envcache"))
    seen = []
    path = download(f"file://{archive}", progress=lambda done, total: seen.append((done, total)))
    size = os.path.getsize(archive)
    assert os.path.dirname(path) == str(tmp_path / "envcache")
    assert open(path, "rb").read() == open(archive, "rb").read()
    assert seen[0] == (0, size) and seen[-1] == (size, size)


def test_stale_cache_entry_is_fetched_again(tmp_path):
    archive = make_tar(tmp_path / "imdb.tar.gz")
    url, cache, calls = f"file://{archive}", tmp_path / "cache", []
    stale = download(url, cache_dir=cache, fetch=copying_fetch(calls))  # no checksum known
    with open(stale, "wb") as f:
        f.write(b"damaged")
    again = download(url, cache_dir=cache, fetch=copying_fetch(calls), sha256=sha256_file(archive))
    assert again == stale and len(calls) == 2
    assert sha256_file(again) == sha256_file(archive)


def test_checksum_mismatch_leaves_nothing_in_cache(tmp_path):
    archive = make_tar(tmp_path / "imdb.tar.gz")
    url, cache, calls = f"file://{archive}", tmp_path / "cache", []
    wrong = "0" * 64
    with pytest.raises(DataError) as e:
        load_imdb(url, cache_dir=cache, fetch=copying_fetch(calls), sha256=wrong)
    assert message(e) == (f"checksum mismatch for {url}: expected sha256 {wrong}, "
                          f"got {sha256_file(archive)}")
    assert list(cache.iterdir()) == []


def test_download_failure(tmp_path):
    def broken_fetch(url, dest):
        with open(dest, "wb") as f:
            f.write(b"partial")
        raise ConnectionResetError("connection reset\nby peer")

    cache = tmp_path / "cache"
    url = "https://example.invalid/imdb.tar.gz"
    with pytest.raises(DataError) as e:
        load_imdb(url, cache_dir=cache, fetch=broken_fetch)
    assert message(e) == (f"download failed for {url}: connection reset by peer "
                          "(offline? pass --data PATH to a local copy, or set IMDB_DATA)")
    assert list(cache.iterdir()) == []
    missing = f"file://{tmp_path}/missing.tar.gz"
    with pytest.raises(DataError) as e:
        load_imdb(missing, cache_dir=cache, progress=False)
    assert message(e).startswith(f"download failed for {missing}: ")
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("url, problem", [
    ("ftp://host/imdb.tar.gz", "not an IMDB folder, tar archive or URL: ftp://host/imdb.tar.gz"),
    ("https://host/imdb.tar.gz#sha256=abc", "invalid sha256 for https://host/imdb.tar.gz: 'abc'"),
])
def test_bad_urls(tmp_path, url, problem):
    with pytest.raises(DataError) as e:
        load_imdb(url, cache_dir=tmp_path, fetch=copying_fetch([]))
    assert message(e) == problem


# ---------------------------------------------------------------- the real data

@pytest.mark.e2e
def test_real_archive():
    imdb = load_imdb(SHARED_ARCHIVE)  # ~1.5 s
    assert len(imdb.train_texts) == len(imdb.train_labels) == 25000
    assert len(imdb.test_texts) == len(imdb.test_labels) == 25000
    for labels in (imdb.train_labels, imdb.test_labels):
        assert labels.tolist() == [0] * 12500 + [1] * 12500  # balanced, neg then pos
    assert all(imdb.train_texts) and all(imdb.test_texts)
