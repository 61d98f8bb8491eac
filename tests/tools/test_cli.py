"""Every ``convlab`` command refuses a bad option before it prints or computes anything."""

from __future__ import annotations

import pytest

from convlab.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lenet", "--epochs", "0"], "--epochs: expected a positive int, got 0"),
        (["lenet", "--batch-size", "-3"], "--batch-size: expected a positive int, got -3"),
        (["lenet", "--max-batches", "0"], "--max-batches: expected a positive int, got 0"),
        (["lenet", "--lr", "0"], "--lr: expected a positive finite number, got 0.0"),
        (["lenet", "--lr", "inf"], "--lr: expected a positive finite number, got inf"),
        (["lenet", "--seed", "-1"], "--seed: expected an int of at least 0"),
        (["lenet", "--backend", "theano"], "theano"),
        (["lenet", "--data", "{tmp}/nonexistent"], "--data: expected the directory holding the Fashion-MNIST files"),
        (["lenet", "--json", "{tmp}/no/such/folder/run.json"], "--json: the folder of"),
        (["lenet", "--plot", "{tmp}/a-file"], "--plot: expected a folder to write the files into"),
        (["demo", "--plot", "{tmp}/a-file"], "--plot: expected a folder to write the files into"),
        (["demo", "--backend", "theano"], "theano"),
        (["parity", "--backends", "theano"], "theano"),
        (["parity", "--json", "{tmp}/no/such/folder/parity.json"], "--json: the folder of"),
        (["bench", "--json", "{tmp}/no/such/folder/bench.json"], "--json: the folder of"),
        (["bench", "--plot", "{tmp}"], "--plot: expected a file to write, but"),
        (["bench", "--backends", "theano"], "theano"),
    ],
)
def test_a_bad_option_is_refused_before_any_output(argv, message, tmp_path, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    status = main([word.format(tmp=tmp_path) for word in argv])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == "", "nothing may be printed before the refusal"
    assert message in err and err.startswith(f"convlab {argv[0]}: "), err
