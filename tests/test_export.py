"""``python -m lit_rl export``: bad input. (Every algorithm's export is checked against its
``act_greedy`` in tests/test_algorithms.py.)"""

from tests.conftest import run_cli


def test_export_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.ckpt"
    result = run_cli("export", "--ckpt_path", str(missing), "--out", str(tmp_path / "p.pt"))
    assert result.returncode == 2 and f"--ckpt_path {missing} does not exist" in result.stderr
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    result = run_cli("export", "--ckpt_path", str(garbage), "--out", str(tmp_path / "p.pt"))
    assert result.returncode == 2 and "is not a readable lit_rl checkpoint" in result.stderr
    assert not (tmp_path / "p.pt").exists()
