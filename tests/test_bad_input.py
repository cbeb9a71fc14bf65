"""Bad input a user can give: one line naming the option, exit status 2, nothing trained.

Each case is refused before any cell trains (so nothing in the output folder is
touched), with the one-line error the CLI prints for an AebenchError.
"""

from __future__ import annotations

from pathlib import Path

import pytest

BASE = ["run", "--models", "ae-mlp", "--datasets", "digits", "--profile", "smoke"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "18446744073709551616"], "--seeds must be at most 4294967295"),
        # only 32 bits reach the generators: 2**32 would silently repeat seed 0
        (["--seeds", "4294967296"], "--seeds must be at most 4294967295"),
        (["--seeds", "4294967295", "--n-seeds", "2"], "--n-seeds must be at most 1"),
        (["--seeds", "-1"], "--seeds must be >= 0"),
        (["--fid-samples", "1"], "--fid-samples 1 is too few for FID"),
        (["--fid-samples", "500", "--no-fid"], "--no-fid and --fid-samples contradict"),
        (["--suite", "{suite}"], "--limit must be at most 2147483647"),
        (["--out", ""], "--out is empty"),
    ],
    ids=[
        "seed-2^64",
        "seed-2^32",
        "n-seeds-past-2^32",
        "seed-negative",
        "fid-1",
        "no-fid-and-fid-samples",
        "suite-limit-1e20",
        "out-empty",
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path, args, message):
    suite = tmp_path / "suite.toml"
    suite.write_text("limit = 1e20\n")
    out = tmp_path / "out"
    args = [a.replace("{suite}", str(suite)) for a in args]
    if "--out" not in args:
        args += ["--out", str(out)]
    code, stdout, err = cli(*BASE, *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aebench: error: "), err
    assert message in lines[0]
    assert "Traceback" not in err + stdout
    assert not any(Path(out / "runs").glob("*")), "nothing may train"
