"""reports.Table: the plain text and the markdown pipe table the chapters show; timings that wait for the GPU."""

from f2d2mini.reports import Table


def test_markdown_is_a_pipe_table_with_escaped_pipes():
    table = Table([{"map": "a", "mean |error|": 0.25}, {"map": "b|c", "mean |error|": 1.0}], {"mean |error|": ".2f"},
                  title="T")
    lines = table.markdown().splitlines()
    assert lines[:2] == ["**T**", ""]
    assert lines[2] == "| map | mean \\|error\\| |" and lines[3] == "|---|---|"
    assert lines[4:] == ["| a | 0.25 |", "| b\\|c | 1.00 |"]
    assert all(line.replace("\\|", "").count("|") == 3 for line in lines[2:])  # two cells in every row


def test_text_right_aligns_columns_under_their_names():
    text = Table([{"k": 1, "value": 0.5}, {"k": 10, "value": 2.0}], {"value": ".1f"}).text()
    assert text.splitlines() == [" k  value", " 1    0.5", "10    2.0"]


def test_rows_with_different_fields_share_one_header():
    text = Table([{"a": 1}, {"a": 2, "b": "x"}]).text()
    assert text.splitlines() == ["a  b", "1   ", "2  x"]
