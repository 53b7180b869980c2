"""The activation scripts really set and restore variables in a shell, whatever the prefix."""

from __future__ import annotations

import subprocess

import pytest

from merlin_doctor.activated import ActivatedEnv
from merlin_doctor.activation import activate_script, deactivate_script
from merlin_doctor.recipe import load_recipe

DUMP = 'for v in LD_LIBRARY_PATH XLA_FLAGS; do if [ -n "$(eval echo \\${$v+x})" ]; then printf "%s=[%s]\\n" $v "$(eval echo \\"\\$$v\\")"; else echo "$v unset"; fi; done'


def _shell(tmp_path, prefix: str, before: str) -> list:
    recipe = load_recipe("tf210-cuda112")
    (tmp_path / "on.sh").write_text(activate_script(recipe))
    (tmp_path / "off.sh").write_text(deactivate_script(recipe))
    script = f"""{before}
export CONDA_PREFIX='{prefix}'
{DUMP}
. '{tmp_path}/on.sh'
{DUMP}
. '{tmp_path}/off.sh'
{DUMP}
"""
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    return [out[0:2], out[2:4], out[4:6]]


@pytest.mark.parametrize("prefix", ["/opt/envs/merlin", "/tmp/my envs/mer lin", "/tmp/$(touch pwned)/`id`;x"])
@pytest.mark.parametrize(
    "before",
    [
        "unset LD_LIBRARY_PATH XLA_FLAGS",
        "export LD_LIBRARY_PATH='/usr/lib/x:/a b' XLA_FLAGS='--xla_foo=1'",
        "export LD_LIBRARY_PATH='' ",
    ],
)
def test_activate_then_deactivate_restores_exactly(tmp_path, prefix, before):
    initial, active, after = _shell(tmp_path, prefix, before)
    assert after == initial, "deactivate.d must restore the variables byte for byte"
    expected = ActivatedEnv(load_recipe("tf210-cuda112"), prefix).expected()
    ld = active[0][len("LD_LIBRARY_PATH=[") : -1].split(":")
    wanted = expected["LD_LIBRARY_PATH"]["contains"]
    assert ld[: len(wanted)] == wanted
    assert active[1] == f"XLA_FLAGS=[{expected['XLA_FLAGS']['equals'][0]}]"
    assert not (tmp_path / "pwned").exists()


def test_prepend_keeps_the_old_entries_without_stray_colons(tmp_path):
    _, active, _ = _shell(tmp_path, "/e", "export LD_LIBRARY_PATH=/old")
    ours = "/e/lib/python3.9/site-packages/nvidia/cudnn/lib:/e/lib:/e/lib/python3.9/site-packages/tensorrt"
    assert active[0] == f"LD_LIBRARY_PATH=[{ours}:/old]"
    _, active, _ = _shell(tmp_path, "/e", "unset LD_LIBRARY_PATH")
    assert active[0] == f"LD_LIBRARY_PATH=[{ours}]"
