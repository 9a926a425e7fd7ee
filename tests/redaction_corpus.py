"""Planted secrets of every rule and look-alikes that must stay, built at run time.

No secret is written in this file as a literal: each is assembled from a prefix and
random characters when a test asks for it, so no scanner takes the source for a leak.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"


class Corpus:
    def __init__(self, seed: int = 14):
        self.rng = random.Random(seed)

    def text(self, n: int, alphabet: str = ALNUM) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def pem(self, kind: str = "RSA") -> str:
        begin, end = "-----" + "BEGIN", "-----" + "END"
        label = f"{kind} PRIVATE" + " KEY-----"
        body = "\n".join(self.text(64, B64) for _ in range(25)) + "\n" + self.text(20, B64) + "=="
        return f"{begin} {label}\n{body}\n{end} {label}"

    def jwt(self) -> str:
        def part(data: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        header = part({"alg": "HS256", "typ": "JWT"})
        payload = part({"sub": self.text(12), "iat": 1736900000, "scope": "repo"})
        return f"{header}.{payload}.{self.text(43, ALNUM + '-_')}"

    def secrets(self) -> dict[str, list[str]]:
        """rule -> secrets of it (the exact text that must disappear)."""
        t = self.text
        return {
            "private-key": [self.pem("RSA"), self.pem("OPENSSH")],
            "aws-access-key-id": ["AKIA" + t(16, string.ascii_uppercase + "234567")],
            "aws-secret-access-key": [t(40, B64)],
            "github-token": [p + t(36) for p in ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")]
            + ["github_pat_" + t(22) + "_" + t(59)],
            "gitlab-token": ["glpat-" + t(20, ALNUM + "_-")],
            "slack-token": ["xoxb-" + t(12, string.digits) + "-" + t(13, string.digits) + "-"
                            + t(24)],
            "slack-webhook": ["T" + t(8, string.ascii_uppercase + string.digits) + "/B"
                              + t(8, string.ascii_uppercase) + "/" + t(24)],
            "stripe-live-key": ["sk_" + "live_" + t(24)],
            "google-api-key": ["AIza" + t(35, ALNUM + "_-")],
            "anthropic-api-key": ["sk-ant-" + "api03-" + t(93, ALNUM + "_-") + "AA"],
            "openai-api-key": ["sk-" + "proj-" + t(64, ALNUM + "_-"),
                               "sk-" + t(20) + "T3Blbk" + "FJ" + t(20)],
            "npm-token": ["npm_" + t(36)],
            "pypi-token": ["pypi-" + "AgEIcHlwaS5vcmc" + t(70, ALNUM + "_-")],
            "jwt": [self.jwt()],
            "url-password": [t(18)],
            "authorization-header": [t(40)],
            "generic-secret": [t(22), t(30), t(16, ALNUM) + "!x"],
        }

    def documents(self, secrets: dict[str, list[str]]) -> dict[str, str]:
        """Realistic logs holding every secret: name -> text."""
        s = secrets
        gh = s["github-token"]
        transcript = [
            {"type": "user", "timestamp": "2025-01-15T09:00:01Z",
             "message": {"role": "user", "content": f"use this token {gh[0]} for the push"}},
            {"type": "tool_result", "timestamp": "2025-01-15T09:00:05Z",
             "content": f"$ env\nGITHUB_TOKEN={gh[1]}\nHOME=/home/dev\n"
                        f"NPM_TOKEN={s['npm-token'][0]}\nOPENAI_API_KEY={s['openai-api-key'][0]}\n"},
            {"type": "assistant", "usage": {"input_tokens": 1234, "output_tokens": 99},
             "content": f"The key is {s['anthropic-api-key'][0]} and the deploy key:\n"
                        f"{s['private-key'][1]}\n"},
            {"type": "tool_use", "input": {"command": "curl -H 'Authorization: Bearer "
                                                      f"{s['authorization-header'][0]}' "
                                                      "https://api.example.com/v1/me"}},
        ]
        jsonl = "".join(json.dumps(line) + "\n" for line in transcript)
        trace = (
            "+ set -x\n"
            f"+ export AWS_ACCESS_KEY_ID={s['aws-access-key-id'][0]}\n"
            f"+ export AWS_SECRET_ACCESS_KEY={s['aws-secret-access-key'][0]}\n"
            f"+ git push https://x-access-token:{gh[2]}@github.com/org/repo.git\n"
            f"+ curl -X POST https://hooks.slack.com/services/{s['slack-webhook'][0]} -d ok\n"
            f"+ stripe --api-key {s['stripe-live-key'][0]} charges list\n"
            f"+ twine upload -u __token__ -p {s['pypi-token'][0]} dist/*\n"
            f"+ glab auth login --token {s['gitlab-token'][0]}\n"
            "+ exit 0\n")
        stack = (
            "Traceback (most recent call last):\n"
            '  File "/srv/app/db.py", line 41, in connect\n'
            "    engine = create_engine(url)\n"
            "sqlalchemy.exc.OperationalError: could not connect to "
            f"postgresql://app_user:{s['url-password'][0]}@db.internal:5432/app\n"
            "requests.exceptions.HTTPError: 403 Client Error for url: "
            f"https://maps.googleapis.com/maps/api/geocode/json?key={s['google-api-key'][0]}\n"
            f"slack_sdk.errors.SlackApiError: invalid_auth for token {s['slack-token'][0]}\n"
            f"jwt.exceptions.ExpiredSignatureError: {s['jwt'][0]}\n")
        env = (
            "# .env dump\n"
            f"DB_PASSWORD={s['generic-secret'][0]}\n"
            f'client_secret: "{s["generic-secret"][1]}"\n'
            f"  apiKey = '{s['generic-secret'][2]}'\n"
            f"GITHUB_PAT={gh[5]}\n"
            f"GH_TOKEN={gh[3]} # bot\n"
            f"RUNNER_TOKEN={gh[4]}\n"
            f"DEPLOY_KEY_FILE=/etc/keys/deploy\n{s['private-key'][0]}\n"
            f"LEGACY_OPENAI={s['openai-api-key'][1]}\n")
        return {"transcript.jsonl": jsonl, "trace.log": trace, "stack.log": stack,
                "env.log": env}

    def look_alikes(self) -> str:
        """Text that holds no secret, however much it looks like one."""
        t = self.text
        lines = []
        for _ in range(30):
            commit = t(40, HEX)
            lines += [
                f"commit {commit}", f"Merge: {commit[:7]} {t(7, HEX)}",
                f"session_id={uuid.UUID(int=self.rng.getrandbits(128))}",
                f'"checksum": "sha256:{hashlib.sha256(t(10).encode()).hexdigest()}"',
                f"sha512 {hashlib.sha512(t(5).encode()).hexdigest()}  dist/app.tar.gz",
                f"md5={hashlib.md5(t(5).encode()).hexdigest()}",
                f"GET https://cdn.example.com/assets/{t(64, HEX)}/app.js 200",
                f"request_id: {t(40)}",
                f"trace {t(40)} span {t(16, HEX)}",
                "version v1.24.3-rc.2+build.417 (go1.22.5)",
                "2025-01-15T09:13:07.123456Z INFO started in 35ms",
                '"usage": {"input_tokens": 18231, "output_tokens": 1290, "max_tokens": 4096}',
                "token count: 18231",
                "password: ********",
                "password=${DB_PASSWORD}",
                '"token": null, "api_key": "<your key here>"',
                f"cache_key={t(32, HEX)}",
                "the secret: is to retry",
                f"ssh-ed25519 {t(68, B64)} dev@laptop",
                f"git clone https://github.com/org/{t(12)}.git",
                f"docker pull ghcr.io/org/app@sha256:{t(64, HEX)}",
            ]
        image = base64.b64encode(bytes(self.rng.getrandbits(8) for _ in range(6000))).decode()
        lines.append(f'<img src="data:image/png;base64,{image}">')
        lines.append(f'{{"type": "image", "source": {{"data": "{image}"}}}}')
        return "\n".join(lines) + "\n"


def every_secret(secrets: dict[str, list[str]]) -> list[str]:
    return [value for values in secrets.values() for value in values]


def private_key_bodies(secrets: dict[str, list[str]]) -> list[str]:
    """Lines of the key bodies: none may survive either."""
    return [line for key in secrets["private-key"] for line in key.splitlines()[1:-1]]
