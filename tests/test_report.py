"""Shareable reports: redaction of canary values, verdicts unchanged, the real CLI on this machine."""

from __future__ import annotations

import copy
import getpass
import json
import os
import re
import socket

from conftest import doctor, doctor_json, load_fixture

from merlin_doctor.redact import Identity, redact, vocabulary

USER, HOME = "quasimodo", "/home/quasimodo"
HOST = "belfry-7.notre-dame.example"
UUID = "GPU-0c0ffee0-1234-4abc-9def-0123456789ab"
CANARIES = {
    "user": USER,
    "host": "belfry-7",
    "home": HOME,
    "gpu uuid": "0c0ffee0-1234",
    "serial": "1562419003917",
    "ip": "10.66.77.88",
    "ipv6": "fe80::1ff:fe23:4567:890a",
    "mac": "02:42:ac:11:00:02",
    "github token": "ghp_Canary0123456789abcdefghijklmnop",
    "hf token": "hf_CanaryAbcdefghijklmnopqrstu",
    "aws secret": "wJalrCanaryEXAMPLEKEY",
    "tf token": "tf-token-canary-value",
    "url password": "hunchback-pass",
    "script key": "ngcCanaryKey0123",
    "dropped variable": "not-on-the-allowlist-canary",
}


def canary_snapshot() -> dict:
    """The healthy T4 fixture moved to the canary user's home, with secrets and ids planted around it."""
    text = json.dumps(load_fixture("gpu-t4-healthy.json")).replace("/home/ana", HOME)
    facts = json.loads(text)
    probes = facts["probes"]
    probes["interpreter"]["env"].update(
        {
            "USER": USER,
            "HOSTNAME": HOST,
            "GITHUB_TOKEN": CANARIES["github token"],
            "HF_TOKEN": CANARIES["hf token"],
            "AWS_SECRET_ACCESS_KEY": CANARIES["aws secret"],
            "TF_API_TOKEN": CANARIES["tf token"],
            "CUDA_VISIBLE_DEVICES": UUID,
            "DASK_SCHEDULER_ADDRESS": "tcp://10.66.77.88:8786",
            "CONDA_CHANNEL_ALIAS": "https://quasi:hunchback-pass@conda.example.org/channels",
            "MY_PROJECT_SETTING": CANARIES["dropped variable"],
        }
    )
    device = probes["nvml"]["devices"][0]
    device.update(uuid=UUID, serial=CANARIES["serial"])
    probes["nvml"]["log"] = [
        f"{USER}@{HOST}: permission denied for user {USER}",
        "eth0 ether 02:42:ac:11:00:02 inet 10.66.77.88/24 inet6 fe80::1ff:fe23:4567:890a",
        "loaded TensorRT 8.5.3.1 and cuDNN 8.1.0.77",
        "cudnn/lib/libcudnn.so.8 (8.6.0.163, pip:nvidia-cudnn-cu11 8.6.0.163); lib/libcudnn.so.8 (8.1.0.77, conda:cudnn 8.1.0.77)",
    ]
    probes["activation"]["scripts"]["activate.d"]["ngc.sh"] = f"export NGC_API_KEY={CANARIES['script key']}\n"
    return facts


def verdicts(data: dict) -> list:
    return [(v["id"], v["status"]) for v in data["verdicts"]]


def test_a_report_of_a_canary_snapshot_holds_no_canary_and_judges_the_same(tmp_path):
    snap, out = tmp_path / "snap.json", tmp_path / "report.json"
    snap.write_text(json.dumps(canary_snapshot()))
    result = doctor("report", "--from", str(snap), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert f"report written to {out}" in result.stdout
    assert (
        "redacted: user name, host name and home directory (<user>, <host>, <home>), 2 IP addresses, "
        "1 MAC address, 1 GPU UUID, 1 serial number" in result.stdout
    )
    assert "not on the allowlist left out" in result.stdout and "Read it before you share it." in result.stdout
    text = out.read_text()
    leaked = {name: value for name, value in CANARIES.items() if value.lower() in text.lower()}
    assert not leaked, leaked
    report = json.loads(text)
    assert report["kind"] == "merlin-doctor-report" and report["facts"]["meta"]["redacted"] is True
    assert "# merlin-doctor report" in report["markdown"] and "| GPUs | Tesla T4 |" in report["markdown"]
    assert {"name": "tensorflow", "version": "2.10.0"} in report["packages"]
    # the shared file is a snapshot: judged like the original, check by check
    assert verdicts(doctor_json("check", "--from", str(out))) == verdicts(doctor_json("check", "--from", str(snap)))
    assert verdicts(report) == verdicts(doctor_json("check", "--from", str(snap)))


def test_placeholders_are_stable_and_versions_survive():
    facts = canary_snapshot()
    red = redact(facts, Identity()).data
    env = red["probes"]["interpreter"]["env"]
    assert env["CUDA_VISIBLE_DEVICES"] == red["probes"]["nvml"]["devices"][0]["uuid"] == "<gpu-uuid-1>"
    assert env["DASK_SCHEDULER_ADDRESS"] == "tcp://<ip-1>:8786"
    assert env["CONDA_CHANNEL_ALIAS"] == "https://<credentials>@conda.example.org/channels"
    assert red["probes"]["nvml"]["log"] == [
        "<user>@<host>: permission denied for user <user>",
        "eth0 ether <mac-1> inet <ip-1>/24 inet6 <ip-2>",
        "loaded TensorRT 8.5.3.1 and cuDNN 8.1.0.77",
        "cudnn/lib/libcudnn.so.8 (8.6.0.163, pip:nvidia-cudnn-cu11 8.6.0.163); lib/libcudnn.so.8 (8.1.0.77, conda:cudnn 8.1.0.77)",
    ]
    assert red["probes"]["interpreter"]["prefix"] == "<home>/miniconda3/envs/merlin"
    assert red["probes"]["activation"]["scripts"]["activate.d"]["ngc.sh"] == "export NGC_API_KEY=<secret>\n"
    # allowlisted names stay, secret-looking and unlisted ones go, whatever their prefix
    assert set(env) == {
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "CONDA_SHLVL",
        "CUDA_VISIBLE_DEVICES",
        "DASK_SCHEDULER_ADDRESS",
        "CONDA_CHANNEL_ALIAS",
    }
    versions = lambda f: {k: d["version"] for k, d in f["probes"]["packages"]["distributions"].items()}  # noqa: E731
    assert versions(red) == versions(facts)
    assert red["probes"]["nvml"]["driver_version"] == "525.85.12"


def test_a_user_named_like_a_package_keeps_the_package_name():
    facts = copy.deepcopy(load_fixture("gpu-t4-healthy.json"))
    facts["probes"]["nvml"]["log"] = ["merlin@gpu-box-3 ran merlin-core"]
    red = redact(facts, Identity(users=("merlin",), hosts=("gpu-box-3",), homes=("/home/merlin",))).data
    assert red["probes"]["nvml"]["log"] == ["<user>@<host> ran merlin-core"]
    assert "merlin-core" in red["probes"]["packages"]["distributions"]
    assert red["probes"]["packages"]["distributions"]["merlin-core"]["top_level"] == ["merlin"]


def test_a_report_of_this_machine_names_neither_user_nor_host_nor_home(tmp_path):
    out = tmp_path / "r.json"
    result = doctor("report", "--fast", "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    report = json.loads(text)
    assert os.path.expanduser("~") not in text and report["facts"]["probes"]["packages"]["distributions"]
    words = vocabulary(report)  # a name that is also a word of the facts (a user called `merlin`) stays as that word
    for name in (getpass.getuser(), socket.gethostname()):
        named = rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])"
        assert not re.search(named + "@" if name.lower() in words else named, text), name


def test_markdown_goes_to_stdout_and_the_notes_to_stderr(tmp_path):
    snap, out = tmp_path / "snap.json", tmp_path / "report.json"
    snap.write_text(json.dumps(canary_snapshot()))
    result = doctor("report", "--from", str(snap), "-o", str(out), "--markdown")
    assert result.stdout.startswith("# merlin-doctor report") and "## Redaction" in result.stdout
    assert "report written to" in result.stderr and USER not in result.stdout


def test_report_never_overwrites_a_file_it_did_not_write(tmp_path):
    snap, precious = tmp_path / "snap.json", tmp_path / "notes.json"
    snap.write_text(json.dumps(canary_snapshot()))
    precious.write_text('{"mine": true}')
    result = doctor("report", "--from", str(snap), "-o", str(precious))
    assert result.returncode == 2 and precious.read_text() == '{"mine": true}'
    assert result.stderr.strip() == (
        f"merlin-doctor: error: {precious}: the file exists and is not a merlin-doctor "
        "report; choose another -o FILE or add --force to replace it"
    )
    assert doctor("report", "--from", str(snap), "-o", str(precious), "--force").returncode == 0
    assert doctor("report", "--from", str(snap), "-o", str(precious)).returncode == 0  # an earlier report: replaced
    assert json.loads(precious.read_text())["kind"] == "merlin-doctor-report"


def test_markdown_puts_problems_first_groups_fixes_and_folds_skips():
    from merlin_doctor.report import markdown

    conda = "conda install -c conda-forge cudatoolkit=11.2.2"
    v = lambda i, s, summary, fix=None: {"id": i, "status": s, "summary": summary, "fix": fix}  # noqa: E731
    doc = {
        "doctor_version": "0.1.0",
        "recipe": "cpu",
        "created_at": "2026-12-04T06:00:00+00:00",
        "summary": {"pass": 1, "fail": 3, "skip": 3},
        "facts": {"probes": {}},
        "packages": [],
        "redaction": {"note": "nothing redacted"},
        "verdicts": [
            v("host.os", "pass", "Debian 12"),
            v("cuda.libcudart", "fail", "no cudart", conda),
            *[v(f"gpu.c{i}", "skip", "skipped by --cpu-ok") for i in range(3)],
            v("gpu.nvml", "fail", "no driver", "install it"),
            v("cuda.libcublas", "fail", "no cublas", conda),
        ],
    }
    text = markdown(doc)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`" in line or "3 checks" in line]
    assert [r.split("|")[2].strip() for r in rows] == [
        "`cuda.libcudart`",
        "`cuda.libcublas`",
        "`gpu.nvml`",
        "`host.os`",
        "3 checks",
    ]
    assert "skipped by --cpu-ok: gpu.c0, gpu.c1, gpu.c2" in rows[-1]
    assert text.count(conda) == 1 and f"- cuda.libcudart, cuda.libcublas: {conda}" in text
