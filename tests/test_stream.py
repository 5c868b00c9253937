"""The streaming sample writer: chunk by chunk, in any order, gives the file np.savez would write."""
import json

import numpy as np
import pytest
import torch

from ddls.sampling.driver import Chunk
from ddls.io.samples_file import read_samples
from ddls.sampling.stream import SampleWriter, sample_layout, spool_path, stream_chunks


def _chunks(n, size, steps_recorded, rng):
    out = []
    for k, start in enumerate(range(0, n, size)):
        b = min(size, n - start)
        out.append(Chunk(k, start, torch.from_numpy(rng.standard_normal((b, 3)).astype(np.float32)),
                         torch.from_numpy(rng.standard_normal((b, 1, 2, 2)).astype(np.float32)),
                         torch.from_numpy(rng.random(b).astype(np.float32)),
                         torch.from_numpy(rng.standard_normal((steps_recorded, b, 1, 2, 2)).astype(np.float32)),
                         [(start, 1, 0.5)]))
    return out


def test_chunks_in_any_order_give_the_whole_arrays(tmp_path):
    rng = np.random.default_rng(0)
    chunks = _chunks(n=11, size=4, steps_recorded=3, rng=rng)
    layout = sample_layout(11, 3, (1, 2, 2), method="mala", steps=10, record_every=5)
    assert {k: v[0] for k, v in layout.items()} == {"x": (11, 1, 2, 2), "z": (11, 3), "acceptance": (11,),
                                                    "trajectory": (3, 11, 1, 2, 2)}
    out = tmp_path / "s.npz"
    writer = SampleWriter(out, layout)
    seen = stream_chunks(writer, [chunks[2], chunks[0], chunks[1]], keep_spool=lambda: False)
    writer.finish({"data": "demo"}, {"record_steps": np.array([0, 5, 10])})
    assert not spool_path(out).exists()
    assert seen.chains == 11 and sorted(seen.restarts) == [(0, 1, 0.5), (4, 1, 0.5), (8, 1, 0.5)]
    with np.load(out, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["acceptance", "meta", "record_steps", "trajectory", "x", "z"]
        np.testing.assert_array_equal(npz["x"], np.concatenate([c.samples.numpy() for c in chunks]))
        np.testing.assert_array_equal(npz["z"], np.concatenate([c.latents.numpy() for c in chunks]))
        np.testing.assert_array_equal(npz["acceptance"], np.concatenate([c.acceptance.numpy() for c in chunks]))
        np.testing.assert_array_equal(npz["trajectory"], np.concatenate([c.trajectory.numpy() for c in chunks], 1))
        np.testing.assert_array_equal(npz["record_steps"], [0, 5, 10])
        assert json.loads(str(npz["meta"])) == {"data": "demo"}
    x, meta = read_samples(out)
    assert x.shape == (11, 1, 2, 2) and meta == {"data": "demo"}


def test_resumed_writer_keeps_earlier_chunks(tmp_path):
    rng = np.random.default_rng(1)
    chunks = _chunks(n=8, size=4, steps_recorded=1, rng=rng)
    layout = sample_layout(8, 3, (1, 2, 2), method="ula", steps=3, record_every=0)
    out = tmp_path / "s.npz"
    first = SampleWriter(out, layout)
    first.add(chunks[0])
    on_disk = np.load(spool_path(out) / "x.npy", mmap_mode="r")  # before close: a kill here loses nothing
    np.testing.assert_array_equal(on_disk[:4], chunks[0].samples.numpy())
    del on_disk
    first.close()  # an interrupted run: the spool stays
    again = SampleWriter(out, layout, resume=True)
    again.add(chunks[1])
    again.finish({})
    x, _ = read_samples(out)
    np.testing.assert_array_equal(x, np.concatenate([c.samples.numpy() for c in chunks]))


def test_a_failed_run_leaves_nothing_unless_it_can_resume(tmp_path):
    layout = sample_layout(8, 3, (1, 2, 2), method="ula", steps=3, record_every=0)
    chunks = _chunks(n=8, size=4, steps_recorded=1, rng=np.random.default_rng(2))

    def failing():
        yield chunks[0]
        raise RuntimeError("chain diverged")

    for resumable in (False, True):
        out = tmp_path / f"s{resumable}.npz"
        with pytest.raises(RuntimeError):
            stream_chunks(SampleWriter(out, layout), failing(), keep_spool=lambda: resumable)
        assert spool_path(out).exists() == resumable and not out.exists()


def test_a_spool_of_another_shape_is_refused(tmp_path):
    from ddls.errors import DDLSError

    out = tmp_path / "s.npz"
    SampleWriter(out, sample_layout(8, 3, (2,), method="ula", steps=1, record_every=0)).close()
    with pytest.raises(DDLSError, match="delete .* to start over"):
        SampleWriter(out, sample_layout(9, 3, (2,), method="ula", steps=1, record_every=0), resume=True)
