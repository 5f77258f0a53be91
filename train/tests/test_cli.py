"""The CLI end to end on a synthetic variant: fit (+ resume), evaluate, zero-shot, report, plots."""

import json

from refaug_train.cli import main
from refaug_train.synthetic import make_variant


def test_fit_evaluate_report(tmp_path):
    v = make_variant(tmp_path / "detr", {"train": 64, "val": 16, "test": 16}, k=4)
    run = tmp_path / "run"
    common = ["--variant", str(v), "--quiet"]
    assert (
        main(["fit", *common, "--head", "sf", "--out", str(run), "--epochs", "1", "--batch-size", "16"]) == 0
    )
    assert (
        main(
            [
                "fit",
                *common,
                "--head",
                "sf",
                "--out",
                str(run),
                "--epochs",
                "2",
                "--batch-size",
                "16",
                "--resume",
            ]
        )
        == 0
    )
    assert (run / "epoch-02.pt").exists() and (run / "loss.png").stat().st_size > 0
    assert (run / "accuracy.png").stat().st_size > 0
    assert json.loads((run / "config.json").read_text())["optimizer"] == "sgd"
    ev = ["evaluate", "--variant", str(v), "--splits", "val,test"]
    assert main([*ev, "--checkpoint", str(run / "epoch-02.pt"), "--out", str(tmp_path / "e1")]) == 0
    assert main([*ev, "--head", "zero-shot", "--out", str(tmp_path / "e0")]) == 0
    assert main(["report", str(tmp_path / "e1"), str(tmp_path / "e0"), "--out", str(tmp_path / "rep")]) == 0
    rows = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert [(r["head"], r["variant"], r["split"]) for r in rows] == [
        ("sf-net1", "detr", "test"),
        ("sf-net1", "detr", "val"),
        ("zero-shot", "detr", "test"),
        ("zero-shot", "detr", "val"),
    ]
    md = (tmp_path / "rep" / "results.md").read_text().splitlines()
    assert md[0].startswith("| head | variant | split | n_refs") and len(md) == 6


def test_bad_variant_is_a_clear_error(tmp_path, capsys):
    assert (
        main(["evaluate", "--variant", str(tmp_path), "--head", "zero-shot", "--out", str(tmp_path / "o")])
        == 2
    )
    assert "no shard" in capsys.readouterr().err


def test_cuda_without_a_gpu_is_an_error_not_a_cpu_run(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    v = make_variant(tmp_path / "detr", {"train": 8, "val": 4}, k=3)
    common = ["--variant", str(v), "--device", "cuda", "--quiet"]
    assert main(["fit", *common, "--head", "sf", "--out", str(tmp_path / "run"), "--epochs", "1"]) == 2
    assert "sees no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    ev = ["evaluate", "--variant", str(v), "--device", "cuda:0", "--head", "zero-shot"]
    assert main([*ev, "--out", str(tmp_path / "e")]) == 2
    assert "sees no CUDA GPU" in capsys.readouterr().err
    assert main([*ev[:-4], "--device", "tpu", "--head", "zero-shot", "--out", str(tmp_path / "e")]) == 2
    assert "only cpu, cuda and cuda:N" in capsys.readouterr().err
