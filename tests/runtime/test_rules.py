"""The rules written once (runtime/records.py, runtime/output.py), each on its own; the black-box
tests (test_predict, test_batch, test_spark, test_bad_rows) check that every front end uses them."""
from __future__ import annotations

import pytest

from runtime.output import check_output
from runtime.records import (EMPTY, INVALID_UTF8, MISSING, NULL, DATAFRAME_OPTIONS, RESERVED, InputError,
                             check_names, check_score_columns, decode_lines, judge)

NUL = "NUL byte: binary input (or not UTF-8 text) is not supported"


# -- decode_lines ---------------------------------------------------------------------------
def test_decode_lines_strips_line_ends_and_the_first_lines_bom():
    data = b"\xef\xbb\xbfone\r\ntwo\n\nthree"
    assert decode_lines(data, "in.txt", 0, 100) == ["one", "two", "", "three"]
    assert decode_lines(b"\xef\xbb\xbfone\n", "in.txt", 5, 100) == ["\ufeffone"]  # not the input's first line
    assert decode_lines(b"a\rb\r\n", "in.txt", 0, 100) == ["a\rb"]  # only a CR before the LF goes


def test_decode_lines_replaces_invalid_utf8():
    assert decode_lines(b"bad \xff\nok\n", "in.txt", 0, 100) == ["bad \ufffd", "ok"]


def test_decode_lines_refuses_nul_and_long_lines_naming_the_line():
    with pytest.raises(InputError) as e:
        decode_lines(b"a\nb\0\n", "in.txt", 10, 100)
    assert str(e.value) == f"in.txt:12: {NUL}"
    with pytest.raises(InputError) as e:
        decode_lines(b"12345\n123456\n", "in.txt", 0, 5)
    assert str(e.value) == "in.txt:2: record longer than 5 bytes (--max-record-bytes)"
    assert decode_lines(b"12345\n", "in.txt", 0, 5) == ["12345"]  # the LF does not count


# -- the bad-row judge ----------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("a good film", ("a good film", None)), ("", ("", EMPTY)), (" \t", (" \t", EMPTY)),
    ("bad \ufffd", ("bad \ufffd", INVALID_UTF8)), (None, ("", NULL)), (MISSING, ("", "no 'body' field")),
    (5, ("", "text is a number, not a string")), ([1], ("", "text is an array, not a string")),
    (b"x", ("", "text is a bytes, not a string")),
])
def test_judge(value, expected):
    assert judge(value, "body") == expected


# -- check_names ----------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    ((["text"], "body", None, ()), "in.csv: no column 'body' (--text-column); columns: text"),
    ((["text"], "text", "id", ()), "in.csv: no column 'id' (--id-column); columns: text"),
    ((["text"], "text", None, ("x",)), "in.csv: no column 'x' (--keep-columns); columns: text"),
    ((["text", "label"], "text", None, ("label",)), "column 'label' clashes with the output column of that name"),
    ((["text", "id"], "text", "id", ("id",)), "column 'id' is asked for twice (--id-column / --keep-columns)"),
])
def test_check_names(args, message):
    with pytest.raises(InputError) as e:
        check_names("in.csv", *args)
    assert str(e.value) == message


def test_check_names_before_the_columns_are_known_and_for_fields():
    check_names(None, None, "text", "id", ("a",))  # only the clashes are checked
    with pytest.raises(InputError, match="clashes"):
        check_names(None, None, "text", "row", ())
    with pytest.raises(InputError) as e:
        check_names("in.jsonl:1", ["text"], "text", "id", (), "field")
    assert str(e.value) == "in.jsonl:1: no field 'id' (--id-column); fields: text"
    with pytest.raises(InputError) as e:
        check_names(None, ["n"], "body", None, (), options=DATAFRAME_OPTIONS)
    assert str(e.value) == "no column 'body' (text_col); columns: n"


@pytest.mark.parametrize("labels, id_column, keep, clash", [
    *[(["a", name], None, (), name) for name in RESERVED],
    (["a", "id"], "id", (), "id"), (["a", "b", "k"], None, ("x", "k"), "k"),
])
def test_check_score_columns(labels, id_column, keep, clash):
    with pytest.raises(InputError) as e:
        check_score_columns(labels, id_column, keep)
    assert str(e.value) == f"label {clash!r} clashes with the output column of that name (--all-scores)"
    check_score_columns(["a", "b", "c"], "id", ("k",))  # no clash


# -- check_output ---------------------------------------------------------------------------
def test_check_output_for_a_file(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("x\n")
    check_output(None, [str(inp)])
    check_output(str(tmp_path / "out.csv"), [str(inp), "-"])
    cases = [(str(tmp_path), [], f"{tmp_path}: output is a directory; give a file name"),
             (str(tmp_path / "no" / "o.csv"), [], f"{tmp_path / 'no' / 'o.csv'}: output directory {tmp_path / 'no'} "
                                                  "does not exist"),
             (str(inp), [str(inp)], f"{inp}: output is also an input ({inp}); it would be overwritten"),
             (str(tmp_path / "o.csv"), [str(tmp_path)], f"{tmp_path / 'o.csv'}: output is inside the input directory "
                                                        f"{tmp_path}")]
    for output, inputs, message in cases:
        with pytest.raises(InputError) as e:
            check_output(output, inputs)
        assert str(e.value) == message


def test_check_output_for_a_spark_directory(tmp_path):
    inp, out = tmp_path / "in.parquet", tmp_path / "out"
    inp.write_bytes(b"PAR1")
    check_output(str(out), [str(inp)], directory=True)  # not there yet
    out.mkdir()
    check_output(str(out), [str(inp)], directory=True)  # empty: nothing to lose
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="is a directory that is not a Spark output"):
        check_output(str(out), [], directory=True)
    check_output(str(out), [], directory=True, overwrite=True)
    (out / "_SUCCESS").write_text("")
    check_output(str(out), [], directory=True)
    with pytest.raises(InputError) as e:
        check_output(str(tmp_path), [str(inp)], directory=True)  # would replace the input
    assert str(e.value) == f"{tmp_path}: output and input {inp} overlap; it would be overwritten"
    with pytest.raises(InputError, match="exists and is not a directory"):
        check_output(str(inp), [], directory=True)
