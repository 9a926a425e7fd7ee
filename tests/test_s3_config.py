"""S3 configured the way AWS users expect, and credentials that never leak.

Against SeaweedFS through the fault proxy, which records each request's line and headers.
"""

from __future__ import annotations

import json
import logging

import pytest

from log_archiver.errors import ConfigError
from log_archiver.storage.s3.store import S3Store
from log_archiver.util.samples import write_sample_logs

TOKEN = "FQoGZXIvYXdzEXAMPLESESSIONTOKENVALUE0123456789abcdef"
WRONG_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGSECRET"


@pytest.fixture
def logs(workspace):
    return write_sample_logs(workspace / "logs", 123)


def entry_of(root, issue=123):
    doc = json.loads((root / "logs/.archive-index.json").read_text())
    return next(e for e in doc["archives"] if e["issue_number"] == issue)


def signed_regions(proxy) -> set[str]:
    """The region in each request's SigV4 credential scope."""
    return {h["authorization"].split("credential=", 1)[1].split("/")[2]
            for h in proxy.headers if "authorization" in h}


def test_no_secret_in_any_output_index_file_or_log(s3_workspace, logs, run_cli, monkeypatch,
                                                   caplog, tmp_path):
    place = s3_workspace
    caplog.set_level(logging.DEBUG)  # as an application that logs everything would
    outputs = []

    def run(*args):
        result = run_cli(*args)
        outputs.extend([result.stdout, result.stderr])
        return result

    place.proxy.fail_matching(r"^PUT .*123-build\.log", "denied")
    assert run("archive", "123").exit_code == 3
    place.proxy.clear_rules()
    assert run("retry-failed-uploads", "123", "--execute").exit_code == 0
    (place.root / "logs/.archive-index.json").unlink()
    assert run("archive", "123", "--reindex-only").exit_code == 0
    assert run("archive", "123").exit_code == 0
    assert run("cleanup-local", "--orphans").exit_code == 0
    # and every way of failing, with a session token in the chain too
    write_sample_logs(place.root / "logs", 124, seed=3)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", WRONG_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    failed = run("archive", "124")
    assert failed.exit_code == 3
    assert failed.json["upload"]["failed"][0]["type"] == "storage_permission"
    monkeypatch.setenv("LOG_ARCHIVER_STORAGE", "s3://no-such-bucket-here/p")
    assert run("retry-failed-uploads", "124", "--execute").exit_code == 2  # not its store
    write_sample_logs(place.root / "logs", 125, seed=6)
    assert run("archive", "125").exit_code == 3

    secrets = [place.server.secret_key, place.server.admin_secret, WRONG_SECRET, TOKEN]
    assert any(TOKEN.lower() in str(h) for h in place.proxy.headers)  # it was really sent
    assert "x-amz-security-token" in caplog.text.lower()  # botocore did log the headers
    texts = {"stdout/stderr": "\n".join(outputs), "log records": caplog.text}
    for path in place.root.rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    for key in place.objects():
        head = place.server.client().head_object(Bucket=place.bucket,
                                                 Key=f"{place.prefix}/{key}")
        texts[f"metadata of {key}"] = json.dumps(head["Metadata"])
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret is written in {where}"


def test_config_file_cannot_hold_credentials(workspace, run_cli):
    config = workspace / ".log-archiver.json"
    config.write_text(json.dumps({"s3": {"aws_secret_access_key": WRONG_SECRET}}))
    result = run_cli("archive", "123")
    assert result.exit_code == 1 and result.json["errors"][0]["type"] == "config"
    assert "aws_secret_access_key" in result.json["errors"][0]["message"]
    assert WRONG_SECRET not in result.stdout + result.stderr


def test_path_style_and_region_from_config(s3_workspace, logs, run_cli):
    place = s3_workspace
    place.write_config(region="eu-west-3")
    assert run_cli("archive", "123").exit_code == 0
    assert signed_regions(place.proxy) == {"eu-west-3"}
    lines = [line for line in place.proxy.requests if line.startswith(("PUT", "HEAD"))]
    assert lines and all(line.split()[1].startswith(f"/{place.bucket}/") for line in lines)


def test_region_from_the_aws_environment(s3_workspace, logs, run_cli, monkeypatch):
    place = s3_workspace
    place.write_config(region=None)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert run_cli("archive", "123").exit_code == 0
    assert signed_regions(place.proxy) == {"ap-south-1"}


@pytest.mark.parametrize("style", ["path", "virtual"])
def test_addressing_style(s3_config, style):
    config = s3_config("s3://logs-bucket/p", endpoint_url="https://s3.example.test",
                       addressing_style=style)
    store = S3Store.from_url(config.storage, config)
    url = store._client.generate_presigned_url(
        "get_object", Params={"Bucket": "logs-bucket", "Key": "p/k"}, ExpiresIn=60)
    expected = ("https://s3.example.test/logs-bucket/p/k" if style == "path"
                else "https://logs-bucket.s3.example.test/p/k")
    assert url.startswith(expected + "?")


def test_credentials_from_a_named_profile(s3_workspace, logs, run_cli, monkeypatch, tmp_path):
    place = s3_workspace
    shared = tmp_path / "aws-credentials"
    shared.write_text(f"[archiver]\naws_access_key_id = {place.server.access_key}\n"
                      f"aws_secret_access_key = {place.server.secret_key}\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    place.write_config(profile="archiver")
    result = run_cli("archive", "123")
    assert result.exit_code == 0, result.stdout
    place.write_config(profile="nobody")
    write_sample_logs(place.root / "logs", 124, seed=5)
    missing = run_cli("archive", "124")
    assert missing.exit_code == 3  # nothing stored, every log kept
    for failure in missing.json["upload"]["failed"]:
        assert failure["type"] == "config" and "'nobody'" in failure["message"]
        assert "profile" in failure["hint"]


def test_r2_url_with_endpoint_and_public_base_from_config(s3_workspace, logs, run_cli,
                                                          monkeypatch):
    place = s3_workspace
    storage = f"r2://{place.bucket}/team/logs"
    monkeypatch.setenv("LOG_ARCHIVER_STORAGE", storage)
    config = json.loads(place.write_config().read_text())
    config.update(storage=storage, public_base_url="https://logs.example.dev/")
    (place.root / ".log-archiver.json").write_text(json.dumps(config))
    result = run_cli("archive", "123")
    assert result.exit_code == 0, result.stdout
    for log in entry_of(place.root)["logs"]:
        assert log["cloud_url"] == f"{storage}/{log['remote_path']}"
        assert log["public_url"] == f"https://logs.example.dev/{log['remote_path']}"
        assert place.read(log["remote_path"])  # really there, at the prefix
    assert not any("x-amz-acl" in h for h in place.proxy.headers)  # R2 has no object ACLs


def test_objects_are_private_unless_config_makes_them_public(s3_workspace, logs, run_cli,
                                                             monkeypatch):
    place = s3_workspace
    assert run_cli("archive", "123").exit_code == 0
    assert not any("x-amz-acl" in h for h in place.proxy.headers)
    assert {log["public_url"] for log in entry_of(place.root)["logs"]} == {None}
    write_sample_logs(place.root / "logs", 124, seed=4)
    place.write_config(public=True)
    monkeypatch.setenv("LOG_ARCHIVER_PUBLIC_BASE_URL", "https://cdn.example.dev/logs")
    assert run_cli("archive", "124").exit_code == 0
    acls = [h.get("x-amz-acl") for h in place.proxy.headers if "x-amz-meta-sha256" in h]
    assert acls[-4:] == ["public-read"] * 4
    for log in entry_of(place.root, 124)["logs"]:
        assert log["public_url"] == f"https://cdn.example.dev/logs/{log['remote_path']}"


def test_r2_without_endpoint_is_a_clear_config_error(s3_config):
    with pytest.raises(ConfigError) as caught:
        S3Store.from_url("r2://logs/x", s3_config("r2://logs/x", endpoint_url=None))
    assert "r2_account_id" in caught.value.hint and "r2://logs/x" in caught.value.message


# -- credentials in the store URL are refused, and never repeated ----------------------

URL_KEY, URL_SECRET = "AKIAURLKEYEXAMPLE", "s3cr3t/URL+Secret0123456789abcdefgh"


@pytest.mark.parametrize("where", ["config file", "environment", "flag", "file url"])
def test_credentials_in_the_store_url_are_refused_and_never_shown(workspace, logs, run_cli,
                                                                   monkeypatch, isolated_git,
                                                                   where):
    from gitutil import git, init_repo

    init_repo(workspace)
    git(workspace, "commit", "-q", "--allow-empty", "-m", "start")
    url = f"s3://{URL_KEY}:{URL_SECRET}@logs-bucket/team"
    args = ["archive", "123"]
    if where == "config file":
        monkeypatch.delenv("LOG_ARCHIVER_STORAGE")
        (workspace / ".log-archiver.json").write_text(json.dumps({"logs_dir": "logs",
                                                                  "storage": url}))
    elif where == "environment":
        monkeypatch.setenv("LOG_ARCHIVER_STORAGE", url)
    elif where == "flag":
        args += ["--storage", url]
    else:
        monkeypatch.setenv("LOG_ARCHIVER_STORAGE",
                           f"file://{URL_KEY}:{URL_SECRET}@/{workspace.parent / 'store'}")
    for command in (args, ["cleanup-local", "123", *args[2:]], ["prepare-upload", "123",
                                                                *args[2:]]):
        result = run_cli(*command)
        assert result.exit_code == 2, result.stdout
        [error] = result.json["errors"]
        assert error["type"] == "usage" and "credentials" in error["message"]
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
            assert name in error["hint"]
        for text in (result.stdout, result.stderr):
            assert URL_SECRET not in text and URL_KEY not in text
            assert URL_SECRET.split("/")[0] not in text
    assert not (workspace / "logs/.archive-index.json").exists()
    assert not (workspace.parent / "store").exists()
    history = git(workspace, "log", "--all", "-p") + git(workspace, "status", "--porcelain")
    assert URL_SECRET not in history and ".archive-index" not in history
