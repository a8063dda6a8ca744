"""Saves killed halfway leave one temporary file, recognisable by its name, that the next save to the folder
removes; files that are not ours, and temporary files of saves still running, are never touched."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from NeuralNetworks.nn import layers, models, saving

KILLED_SAVE = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from NeuralNetworks.nn import layers, models, saving

    def killed(handle, **arrays):
        handle.write(b"PK\\x03\\x04 half a model")
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    model = models.Sequential(seed=0)
    model.add(layers.Dense(2, input_shape=(3,)))
    saving.np.savez = killed
    model.save(sys.argv[1])
""")


def small_model():
    model = models.Sequential(seed=0)
    model.add(layers.Dense(2, input_shape=(3,)))
    return model


def temporary_files(folder):
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(saving.TEMPORARY_SUFFIX))


def test_a_killed_save_keeps_the_old_file_and_the_next_save_cleans_up(tmp_path):
    target = tmp_path / "m.npz"
    first = small_model()
    first.save(target)
    before = target.read_bytes()
    for _ in range(3):
        run = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(target)], capture_output=True, timeout=120)
        assert run.returncode == -9, run.stderr.decode()[-2000:]
        assert target.read_bytes() == before  # the old model is intact
        assert len(temporary_files(tmp_path)) == 1  # never more than one left behind
        assert temporary_files(tmp_path)[0].startswith(".m.npz.")
    small_model().save(tmp_path / "other.npz")  # any save to the folder cleans up
    assert temporary_files(tmp_path) == []
    np.testing.assert_array_equal(models.load(target).get_weights()[0], first.get_weights()[0])


def test_what_is_not_an_abandoned_temporary_file_is_kept(tmp_path):
    ours = tmp_path / f".m.npz.123.0123abcd{saving.TEMPORARY_SUFFIX}"
    ours.write_bytes(b"left by a killed save")
    others = {name: b"user data" for name in (".m.npz.123.0123abcd.tmp", "m.npz.123.0123abcd" + saving.TEMPORARY_SUFFIX,
                                              f".m.npz.x.0123abcd{saving.TEMPORARY_SUFFIX}", "notes.txt")}
    for name, data in others.items():
        (tmp_path / name).write_bytes(data)
    outside = tmp_path / "elsewhere.txt"
    outside.write_bytes(b"precious")
    (tmp_path / f".link.npz.1.0123abcd{saving.TEMPORARY_SUFFIX}").symlink_to(outside)  # a symlink is never ours
    running = tmp_path / f".n.npz.{os.getpid()}.89abcdef{saving.TEMPORARY_SUFFIX}"
    with open(running, "wb") as handle:  # a save in progress holds its temporary file locked
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        small_model().save(tmp_path / "m.npz")
        assert running.exists()
    assert not ours.exists()
    assert all((tmp_path / name).read_bytes() == data for name, data in others.items())
    assert outside.read_bytes() == b"precious" and (tmp_path / f".link.npz.1.0123abcd{saving.TEMPORARY_SUFFIX}").is_symlink()
    assert saving.remove_leftovers(tmp_path) == [running]  # once its save is over, it is a leftover too


@pytest.mark.parametrize("name", ["m.npz", "folder/"])
def test_saving_writes_only_inside_the_target_folder(tmp_path, name):
    folder = tmp_path / "inside"
    folder.mkdir()
    before = set(tmp_path.iterdir())
    path = small_model().save(folder / name)
    assert path.parent.resolve().is_relative_to(folder.resolve())
    assert set(tmp_path.iterdir()) == before
