"""URLs in messages, outputs and the index never carry credentials.

``https://user:TOKEN@host/path`` is a common way to pass a token (CI variables, git
remotes); whatever is printed or stored keeps the URL without its ``user:password@``.
"""

from __future__ import annotations

import re

from log_archiver.errors import UsageError

# scheme://userinfo@ : the userinfo runs to the last '@' before the path (a password may
# hold '@'; a '/' in one is invalid unencoded, and every URL taken from the configuration
# is refused outright when it holds an '@' at all). file:/// has none. Object keys in a
# path may hold '@' (a file named @octocat): those are never touched.
_USERINFO_RE = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?!/)[^/?#\s'\"<>]*@")


def strip_userinfo(url: str) -> str:
    """``url`` without its ``user[:password]@`` part (other text is returned as is)."""
    return redact_userinfo(url)


def redact_userinfo(text: str) -> str:
    """``text`` with the userinfo of every URL in it removed."""
    if not isinstance(text, str) or "@" not in text:
        return text
    return _USERINFO_RE.sub(lambda match: match.group("scheme"), text)


_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?=/)")


def _scheme_and_rest(text: str) -> tuple[str, str]:
    """(``scheme:``, the rest) of a URL as typed; no scheme unless a '/' follows it (in
    ``KEY:SECRET@bucket`` the key is no scheme)."""
    match = _SCHEME_RE.match(text)
    scheme = match.group() if match else ""
    return scheme, text[len(scheme):]


def has_userinfo(text: str) -> bool:
    """Whether a URL as typed (well-formed or not) may carry ``user:password@``: any '@'
    except in the path of a URL with an empty authority (``file:///srv/a@b``)."""
    _, rest = _scheme_and_rest(str(text))
    return "@" in rest and not rest.startswith(("///", "//localhost/"))


def has_query(text: str) -> bool:
    """Whether a URL as typed has a query or a fragment (``?password=``, ``#token``)."""
    return "?" in str(text) or "#" in str(text)


def shown_url(text: str) -> str:
    """A URL from the configuration as a message may show it, well-formed or not: what
    lies between the scheme and the last '@' becomes ``***``, a query or fragment
    ``?***``. Every message about such a URL is built from this, never from the URL."""
    text = str(text)
    scheme, rest = _scheme_and_rest(text)
    if has_userinfo(text):
        rest = "***@" + rest.rsplit("@", 1)[1]
        scheme += "//" if text[len(scheme):].startswith("//") else ""
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=-1)
    return scheme + (rest if cut < 0 else rest[:cut] + "?***")


_AWS_WAY = ("the standard AWS way: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
            "AWS_PROFILE (s3.profile)")
CREDENTIAL_HINT = f"remove the credentials from the URL and give them {_AWS_WAY}"


def check_store_url(url: str) -> None:
    """Refuse a store URL that carries credentials (``s3://KEY:SECRET@bucket``), without
    ever repeating them: they would end up in the index, the issue comment and git."""
    # A secret may hold '/', so any '@' counts, except in the path of a file:/// URL
    # (a bucket or host name has none).
    if has_userinfo(url):
        raise UsageError(f"storage URL {shown_url(url)!r} carries credentials before '@' "
                         "(not shown)", CREDENTIAL_HINT)
    if has_query(url):  # no store takes one (a file path would lose it unseen)
        raise UsageError(f"storage URL {shown_url(url)!r} has a query or fragment (not "
                         "shown)", "remove what follows '?' or '#' (percent-encode one that "
                         f"belongs to a path); credentials go {_AWS_WAY}")


def check_public_url(url: str) -> None:
    """A public base URL (what a browser opens) is http(s) and carries no credentials: it
    is written into every log record of the index, which goes into git."""
    if has_userinfo(url) or has_query(url):
        raise UsageError(f"public base URL {shown_url(url)!r} carries credentials before '@' "
                         "or a query (not shown)",
                         "give the public address of the store with no user, password or "
                         "query (percent-encode an '@' that belongs to the path)")
    scheme, _, rest = str(url).partition("://")
    if scheme.lower() not in ("http", "https") or not rest:
        raise UsageError(f"public base URL {shown_url(url)!r} is not an http:// or https:// "
                         "URL", "set public_base_url (LOG_ARCHIVER_PUBLIC_BASE_URL) to the "
                         "address browsers open the store at, e.g. https://logs.example.com")


_REDIS_RE = re.compile(r"rediss?://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])"
                       r"(?::(?P<port>[0-9]{1,5}))?(?:/(?P<db>[0-9]{1,5})?)?")
QUEUE_URL_HINT = ("set queue.url in .log-archiver.json (or LOG_ARCHIVER_QUEUE_URL) to "
                  "sqlite:///relative/path, sqlite:////absolute/path or redis://host:port/db")
QUEUE_PASSWORD_HINT = ("remove it from the URL: a Redis password goes in the environment "
                       "variable LOG_ARCHIVER_REDIS_PASSWORD (a SQLite queue needs none); ")


def check_queue_url(url: str) -> None:
    """A job queue URL: ``sqlite:///path`` (relative to the repository root; four slashes
    for an absolute path) or ``redis://host[:port][/db]`` (``rediss://`` for TLS). A
    password is never taken from the URL (it would sit in a committed config file):
    LOG_ARCHIVER_REDIS_PASSWORD gives it. No message repeats a userinfo or a query, of
    any scheme, well-formed or not."""
    text = str(url)
    shown = shown_url(text)
    if has_userinfo(text):
        raise UsageError(f"queue URL {shown!r} carries credentials before '@' (not shown)",
                         QUEUE_PASSWORD_HINT + QUEUE_URL_HINT)
    if has_query(text):
        raise UsageError(f"queue URL {shown!r} has a query or fragment (not shown)",
                         QUEUE_PASSWORD_HINT + QUEUE_URL_HINT)
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text) or not sep:
        raise UsageError(f"queue URL {shown!r} is not a sqlite:/// or redis:// URL",
                         QUEUE_URL_HINT)
    if scheme == "sqlite":
        if not (rest[1:] if rest.startswith("/") else ""):
            raise UsageError(f"queue URL {shown!r} names no database file", QUEUE_URL_HINT)
        return
    if scheme in ("redis", "rediss"):
        match = _REDIS_RE.fullmatch(f"{scheme}://{rest}")
        port = match and match.group("port")
        if match is None or (port and not 0 < int(port) < 65536):
            raise UsageError(f"queue URL {shown!r} is not redis://host[:port][/db]",
                             QUEUE_URL_HINT)
        return
    raise UsageError(f"queue URL {shown!r} has the scheme {scheme!r}; only sqlite "
                     "and redis are supported", QUEUE_URL_HINT)


URL_CHECKS = {"storage": check_store_url, "public_base_url": check_public_url,
              "queue_url": check_queue_url}
