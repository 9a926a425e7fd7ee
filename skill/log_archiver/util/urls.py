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


CREDENTIAL_HINT = ("remove the credentials from the URL and give them the standard AWS way: "
                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (s3.profile)")


def check_store_url(url: str) -> None:
    """Refuse a store URL that carries credentials (``s3://KEY:SECRET@bucket``), without
    ever repeating them: they would end up in the index, the issue comment and git."""
    scheme, _, rest = str(url).partition("://")
    # A secret may hold '/', so any '@' counts, except in the path of a file:/// URL
    # (a bucket or host name has none).
    local_path = scheme.lower() == "file" and rest.startswith(("/", "localhost/"))
    if "@" in rest and not local_path:
        shown = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
        raise UsageError(f"storage URL {shown!r} carries credentials before '@' (not shown)",
                         CREDENTIAL_HINT)


def check_public_url(url: str) -> None:
    """A public base URL (what a browser opens) is http(s) and carries no credentials: it
    is written into every log record of the index, which goes into git."""
    scheme, _, rest = str(url).partition("://")
    if "@" in rest:
        raise UsageError(f"public base URL '{scheme}://***@{rest.rsplit('@', 1)[1]}' carries "
                         "credentials before '@' (not shown)",
                         "give the public address of the store with no user or password "
                         "(percent-encode an '@' that belongs to the path)")
    if scheme.lower() not in ("http", "https") or not rest:
        raise UsageError(f"public base URL {url!r} is not an http:// or https:// URL",
                         "set public_base_url (LOG_ARCHIVER_PUBLIC_BASE_URL) to the address "
                         "browsers open the store at, e.g. https://logs.example.com")


_REDIS_RE = re.compile(r"rediss?://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])"
                       r"(?::(?P<port>[0-9]{1,5}))?(?:/(?P<db>[0-9]{1,5})?)?")
QUEUE_URL_HINT = ("set queue.url in .log-archiver.json (or LOG_ARCHIVER_QUEUE_URL) to "
                  "sqlite:///relative/path, sqlite:////absolute/path or redis://host:port/db")


def check_queue_url(url: str) -> None:
    """A job queue URL: ``sqlite:///path`` (relative to the repository root; four slashes
    for an absolute path) or ``redis://host[:port][/db]`` (``rediss://`` for TLS). A
    password is never taken from the URL (it would sit in a committed config file):
    LOG_ARCHIVER_REDIS_PASSWORD gives it."""
    text = str(url)
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if scheme in ("redis", "rediss") and "@" in rest:
        raise UsageError(f"queue URL '{scheme}://***@{rest.rsplit('@', 1)[1]}' carries "
                         "credentials before '@' (not shown)",
                         "remove them from the URL and set LOG_ARCHIVER_REDIS_PASSWORD")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text) or not sep:
        raise UsageError(f"queue URL {text!r} is not a sqlite:/// or redis:// URL",
                         QUEUE_URL_HINT)
    if scheme == "sqlite":
        path = rest[1:] if rest.startswith("/") else ""
        if not path or "?" in rest or "#" in rest:
            raise UsageError(f"queue URL {text!r} names no database file (or has a query)",
                             QUEUE_URL_HINT)
        return
    if scheme in ("redis", "rediss"):
        match = _REDIS_RE.fullmatch(f"{scheme}://{rest}")
        port = match and match.group("port")
        if match is None or (port and not 0 < int(port) < 65536):
            raise UsageError(f"queue URL {text!r} is not redis://host[:port][/db]",
                             QUEUE_URL_HINT)
        return
    raise UsageError(f"queue URL {text!r} has the scheme {scheme!r}; only sqlite and redis "
                     "are supported", QUEUE_URL_HINT)


URL_CHECKS = {"storage": check_store_url, "public_base_url": check_public_url,
              "queue_url": check_queue_url}
