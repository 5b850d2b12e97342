"""train_state: a run interrupted after a save and resumed equals the uninterrupted run, bit for bit; a state that
does not fit (another config, another kind of device, none at all) is refused in words."""

from dataclasses import replace

import pytest
import torch
from helpers import TINY_NET, tiny_teacher_config

from f2d2mini import loop
from f2d2mini.images import data, unet
from f2d2mini.losses import teacher_loss

torch.set_num_threads(1)


def test_resume_after_an_interrupt_equals_an_uninterrupted_run(tmp_path):
    train_data = data.load("digits")
    loss = teacher_loss(data.batches(train_data, 8), 1.0)
    torch.manual_seed(0)
    straight = loop.fit(unet.UNetVelocity(TINY_NET), loss, tiny_teacher_config())

    def interrupted(model, step, gen):
        if step == 9:
            raise KeyboardInterrupt  # Ctrl-C (or a lost machine) after the save at step 8
        return loss(model, step, gen)

    state, config = tmp_path / "run.state.pt", tiny_teacher_config(checkpoint_every=4)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        loop.fit(unet.UNetVelocity(TINY_NET), interrupted, config, state_path=state)
    assert torch.load(state, weights_only=True)["step"] == 8
    torch.manual_seed(1)  # a different fresh initialisation: the state must overwrite all of it
    resumed = loop.fit(unet.UNetVelocity(TINY_NET), loss, config, state_path=state, resume=True)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    assert resumed.history.step == straight.history.step == [5, 10, 12]
    assert resumed.history.loss == straight.history.loss
    with pytest.raises(ValueError, match="the config differs.*lr: saved 0.002, now 0.1"):
        loop.fit(unet.UNetVelocity(TINY_NET), loss, replace(config, lr=0.1), state_path=state, resume=True)
    with pytest.raises(FileNotFoundError, match="cannot resume: no training state"):
        loop.fit(unet.UNetVelocity(TINY_NET), loss, config, state_path=tmp_path / "none.pt", resume=True)
    saved = torch.load(state, weights_only=True)
    torch.save({**saved, "device_type": "cuda"}, tmp_path / "gpu.state.pt")
    with pytest.raises(ValueError, match="it was saved on cuda; resume on the same kind of device"):
        loop.fit(unet.UNetVelocity(TINY_NET), loss, config, state_path=tmp_path / "gpu.state.pt", resume=True)
    with pytest.raises(ValueError, match="checkpoint_every=4 needs a state_path"):
        loop.fit(unet.UNetVelocity(TINY_NET), loss, config)
