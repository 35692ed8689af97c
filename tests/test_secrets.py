"""No credential anywhere: not in output, logs, reports, the manifest or a sidecar; never to media.

The services here echo the credentials back in their error messages (some real APIs do), so
every path an error takes to the user is exercised with a secret in it: retried errors logged
with -v, a listing that fails, a failed download, text and JSON logs, run reports. The
secrets carry a quote and a backslash, which JSON escapes: an escaped secret is still a
secret. Every file the runs leave, and all they print, is searched for each of them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from archiver.standin import DatasetSpec, Fault, StandIn
from tests.conftest import StandInFactory
from tests.support import config_dict, run_child, write_config

VTH = "/videoTaskHistory"
LIST = "/open/v1/video_lip_sync/list"
TOKEN = "/open/v1/access_token"

VTH_TOKEN = 'vth-"tok\\en"-51ab'
APP_ID = "app-7"
SECRET_KEY = 'sk-"se\\cret"-9c1d'
MINTED = 'minted-"acc\\ess"-7f3a'
SECRETS = (VTH_TOKEN, SECRET_KEY, MINTED)


def _forms(secret: str) -> list[str]:
    """The secret as it would appear in plain text, in JSON, and in a Python repr."""
    return [secret, json.dumps(secret)[1:-1], repr(secret)[1:-1]]


def _leaks(texts: dict[str, bytes]) -> list[str]:
    found = []
    for where, data in texts.items():
        text = data.decode("utf-8", "replace")
        for secret in SECRETS:
            for form in _forms(secret):
                if form in text:
                    found.append(f"{where}: {form}")
    return found


def _echo(code: int, msg: str) -> str:
    return json.dumps({"code": code, "msg": msg, "trace_id": "ab" * 16, "data": None})


async def _standin(make_standin: StandInFactory) -> StandIn:
    return await make_standin(
        DatasetSpec(vth_tasks=25, chanjing_tasks=25),
        vth_token=VTH_TOKEN,
        chanjing_app_id=APP_ID,
        chanjing_secret_key=SECRET_KEY,
        # The token the token endpoint hands out below: the API takes it.
        chanjing_access_token=MINTED,
    )


def _arm(standin: StandIn) -> None:
    """Faults that put every secret in some error's way (re-armed for each run)."""
    standin.faults.clear()
    data = {"access_token": MINTED, "expire_in": int(time.time()) + 86_400}
    minted = {"code": 0, "msg": "success", "data": data}
    faults = [
        Fault("bad_json", path=TOKEN, times=-1, value=json.dumps(minted)),
        # Retried (each retry logged with -v) until the listing gives up on it; meanwhile
        # page 3, asked for at the same time, has failed for good: an error never raised.
        Fault("bad_json", path=LIST, page=2, times=-1, value=_echo(50000, f"busy: {MINTED}")),
        Fault(
            "bad_json",
            path=LIST,
            page=3,
            times=-1,
            value=_echo(40000, f"bad key {SECRET_KEY} for token {MINTED}"),
        ),
        Fault("bad_json", path=VTH, page=2, times=-1, value=_echo(401, f"{VTH_TOKEN} expired")),
        Fault("http_status", path="/media/*.jpg", value=404, times=-1),
    ]
    for fault in faults:
        standin.faults.add(fault)


async def test_no_secret_is_printed_logged_reported_or_archived(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await _standin(make_standin)
    cfg = config_dict(standin, chanjing={"app_id": APP_ID, "secret_key": SECRET_KEY})
    cfg["sources"]["faceswap"]["token"] = VTH_TOKEN
    config = write_config(tmp_path, cfg)
    texts: dict[str, bytes] = {}
    for log_format in ("text", "json"):
        _arm(standin)
        log = tmp_path / f"{log_format}.log"
        report = tmp_path / f"{log_format}-report.json"
        result = await run_child(
            "run", "-c", config, "-v", "--log-format", log_format, "--log-file", log,
            "--report", report, output=tmp_path / f"{log_format}.out",
        )  # fmt: skip
        assert result.code == 3, result.output
        assert "code 50000" in result.output
        assert "expired" in result.output and "HTTP 404" in result.output
        texts |= {f"{log_format} output": result.output.encode(), log.name: log.read_bytes()}
        texts[report.name] = report.read_bytes()
    archive = tmp_path / "archive"
    assert list(archive.rglob("metadata.json"))
    for path in archive.rglob("*"):
        if path.is_file():
            texts[str(path.relative_to(archive))] = path.read_bytes()
    assert "manifest.sqlite3" in texts and any(p.startswith(".archiver/runs/") for p in texts)
    leaks = _leaks(texts)
    assert leaks == [], "\n".join(leaks)


async def test_credentials_never_reach_a_media_host_even_after_a_redirect(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    standin = await make_standin()
    elsewhere = await make_standin()  # another host, serving the same files
    for record in standin.dataset.succeeded_vth()[:3] + standin.dataset.succeeded_chanjing()[:3]:
        for key in ("origin", "video_url"):
            if key in record:
                path = standin.dataset.media_path(record[key])
                target = elsewhere.media_url + path
                standin.faults.add(Fault("redirect", path=path, value=target))
    cfg = config_dict(standin, vth={"headers": {"X-Api-Key": "k-secret-123"}})
    config = write_config(tmp_path, cfg)
    result = await run_child("run", "-c", config, output=tmp_path / "out.txt")
    assert result.code == 0, result.output
    assert len(elsewhere.stats.media_requests) == 6
    for host in (standin, elsewhere):
        assert not host.stats.media_header_names & {"authorization", "access_token", "x-api-key"}
        for request in host.stats.media_requests:
            values = " ".join(v for _, v in request.headers)
            for secret in ("demo-faceswap-token", "demo-secret", "k-secret-123"):
                assert secret not in values
            tokens = [*standin.chanjing_tokens.values(), "demo-chanjing-token"]
            assert not any(token in values for token in tokens)


async def test_an_unexpected_error_and_its_traceback_show_no_secret(
    make_standin: StandInFactory, tmp_path: Path
) -> None:
    # The token endpoint hands out a token no header can carry (a control character in it):
    # sending it fails inside the HTTP client, an error archiver does not expect, whose
    # traceback -v prints. Neither it nor anything else may show a credential.
    standin = await _standin(make_standin)
    bad = "minted-\x01-" + MINTED
    data = {"access_token": bad, "expire_in": int(time.time()) + 86_400}
    answer = json.dumps({"code": 0, "msg": "success", "data": data})
    standin.faults.add(Fault("bad_json", path=TOKEN, times=-1, value=answer))
    cfg = config_dict(standin, chanjing={"app_id": APP_ID, "secret_key": SECRET_KEY})
    cfg["sources"]["faceswap"]["token"] = VTH_TOKEN
    config = write_config(tmp_path, cfg)
    texts: dict[str, bytes] = {}
    for log_format in ("text", "json"):
        log = tmp_path / f"{log_format}.log"
        result = await run_child(
            "run", "-c", config, "-v", "--log-format", log_format, "--log-file", log,
            output=tmp_path / f"{log_format}.out",
        )  # fmt: skip
        assert result.code == 3, result.output
        assert "unexpected error" in result.output
        texts |= {f"{log_format} output": result.output.encode(), log.name: log.read_bytes()}
    assert b"Traceback" in texts["text.log"] and b"Traceback" in texts["json.log"]
    for path in (tmp_path / "archive").rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_bytes()
    leaks = _leaks(texts) + [w for w, d in texts.items() if bad.encode() in d]
    assert leaks == [], "\n".join(leaks)
