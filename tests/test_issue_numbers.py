import pytest

from log_archiver.errors import UsageError
from log_archiver.model.issues import parse_issue, prefixed_matches, session_matches


@pytest.mark.parametrize("value", ["1", "12", "#12", " 123 ", "2147483647"])
def test_parse_accepts_positive_whole_numbers(value):
    assert parse_issue(value) == int(value.strip().lstrip("#"))


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", "../x", "12;rm", "", "012",
                                   "99999999999", "1e3", "12 13", None])
def test_parse_rejects_everything_else(value):
    with pytest.raises(UsageError) as caught:
        parse_issue(value)
    assert repr(str(value)) in caught.value.message


@pytest.mark.parametrize("name,owner", [
    ("session-12-2025-01-15.md", 12),
    ("session-112-2025-01-15.md", 112),
    ("session-1234.md", 1234),
    ("notes-for-12.md", 12),
    ("fix_12_debugging.md", 12),
])
def test_session_names(name, owner):
    for issue in (12, 112, 123, 1234):
        assert session_matches(name, issue) == (issue == owner), (name, issue)


def test_dates_in_session_names_are_not_issue_numbers():
    assert not session_matches("2025-01-12-agent.md", 12)
    assert not session_matches("run-20250112.md", 12)
    assert session_matches("2025-01-15-issue-12.md", 12)
    assert not session_matches("session-5-2025-01-12.md", 12)


def test_prefixed_names_need_the_number_alone():
    assert prefixed_matches("12-build.log", 12)
    for name in ("112-build.log", "123-build.log", "1234-build.log", "12", "12-", "x12-build"):
        assert not prefixed_matches(name, 12), name
