"""Built-in flow-matching policy and checkpoint directories: shapes, loss, save/load, safety."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aloe_ros.policies.base import (
    ChunkPolicy,
    Observation,
    ObservationBatch,
    PolicyError,
    TrainableChunkPolicy,
)
from aloe_ros.policies.builtin import BuiltinPolicy, BuiltinPolicyConfig, hash_task_tokens
from aloe_ros.policies.checkpoint import checkpoint_sha256, load_policy

torch.set_num_threads(1)

JOINTS = [f"j{i}" for i in range(4)]
CAMERAS = ["top", "wrist"]


def tiny_policy(horizon: int = 8, **overrides: object) -> BuiltinPolicy:
    settings = dict(joint_names=JOINTS, camera_names=CAMERAS, chunk_horizon=horizon,
                    flow_steps=3, image_size=(12, 16), cnn_channels=8, camera_features=8,
                    text_buckets=64, text_dim=8, hidden_dim=32, head_layers=2)
    settings.update(overrides)
    return BuiltinPolicy(BuiltinPolicyConfig(**settings))  # type: ignore[arg-type]


def observation(seed: int = 0, size: tuple[int, int] = (24, 32)) -> Observation:
    rng = np.random.default_rng(seed)
    return Observation({c: rng.integers(0, 255, (*size, 3), dtype=np.uint8) for c in CAMERAS},
                       rng.normal(size=len(JOINTS)).astype(np.float32), "put the phone in")


def batch(count: int) -> ObservationBatch:
    return ObservationBatch.stack([observation(i) for i in range(count)])


def test_implements_both_protocols_and_shapes() -> None:
    policy = tiny_policy()
    assert isinstance(policy, ChunkPolicy) and isinstance(policy, TrainableChunkPolicy)
    assert policy.predict_chunk(observation()).shape == (8, 4)
    assert policy.predict_chunk(observation()).dtype == np.float32
    assert policy.sample_chunks(observation(), 5).shape == (5, 8, 4)
    assert policy.sample_actions(batch(3), count=2).shape == (3, 2, 8, 4)


def test_any_camera_resolution_is_downsampled() -> None:
    policy = tiny_policy()
    assert policy.predict_chunk(observation(size=(240, 320))).shape == (8, 4)


def test_missing_camera_or_wrong_state_size_is_a_policy_error() -> None:
    policy = tiny_policy()
    obs = observation()
    del obs.images["wrist"]
    with pytest.raises(PolicyError, match="wrist"):
        policy.predict_chunk(obs)
    obs = observation()
    obs.state = np.zeros(7, np.float32)
    with pytest.raises(PolicyError, match="7 values"):
        policy.predict_chunk(obs)


def test_task_hashing_is_deterministic_and_case_insensitive() -> None:
    assert hash_task_tokens("Open the box", 1024) == hash_task_tokens("open THE box!", 1024)
    assert hash_task_tokens("open the box", 1024) != hash_task_tokens("fold the towel", 1024)
    assert hash_task_tokens("", 16) == hash_task_tokens("  ", 16)


def test_loss_weights_and_mask() -> None:
    torch.manual_seed(0)
    policy = tiny_policy()
    obs = batch(4)
    actions = torch.randn(4, 8, 4)
    # Zero weight on a sample: its target cannot matter.
    weights = torch.tensor([1.0, 1.0, 1.0, 0.0])
    torch.manual_seed(1)
    loss_a = policy.flow_matching_loss(obs, actions, weights)
    changed = actions.clone()
    changed[3] += 100.0
    torch.manual_seed(1)
    loss_b = policy.flow_matching_loss(obs, changed, weights)
    assert torch.isclose(loss_a, loss_b)
    # Masked steps (padding of partial chunks) cannot matter either.
    mask = torch.ones(4, 8)
    mask[:, 5:] = 0
    padded = actions.clone()
    padded[:, 5:] = -50.0
    torch.manual_seed(2)
    loss_c = policy.flow_matching_loss(obs, actions, None, mask)
    torch.manual_seed(2)
    loss_d = policy.flow_matching_loss(obs, padded, None, mask)
    assert torch.isclose(loss_c, loss_d)
    assert loss_c.requires_grad


def test_training_fits_a_chunk_that_depends_on_the_state() -> None:
    """A few hundred steps make sampled chunks follow the state (the head actually learns)."""
    torch.manual_seed(0)
    policy = tiny_policy(horizon=4)
    observations = [observation(i) for i in range(32)]
    obs = ObservationBatch.stack(observations)
    targets = obs.state[:, None, :].repeat(1, 4, 1) + 0.5
    policy.fit_normalization(obs.state.numpy(), targets.numpy())
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    policy.train()
    for _ in range(300):
        loss = policy.flow_matching_loss(obs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    policy.eval()
    policy.flow_steps = 10
    predicted = policy.sample_actions(obs, 4).mean(dim=1)
    error = (predicted - targets).abs().mean().item()
    assert error < 0.25, error


def _fit_deterministic_targets(policy: BuiltinPolicy, steps: int = 300
                               ) -> tuple[ObservationBatch, torch.Tensor]:
    torch.manual_seed(0)
    obs = ObservationBatch.stack([observation(i) for i in range(32)])
    targets = obs.state[:, None, :].repeat(1, policy.chunk_horizon, 1) + 0.5
    targets = targets + 0.3 * torch.linspace(0, 1, policy.chunk_horizon)[None, :, None]
    policy.fit_normalization(obs.state.numpy(), targets.numpy())
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    policy.train()
    for _ in range(steps):
        loss = policy.flow_matching_loss(obs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    policy.eval()
    return obs, targets


def _normalised_spread(policy: BuiltinPolicy, obs: ObservationBatch) -> float:
    """Std over 16 samples per observation, in the head's normalised units (noise = 1)."""
    samples = policy.sample_actions(obs, 16)
    state = obs.state.float()
    normalised = torch.stack([policy.normalize_actions(samples[:, m], state)
                              for m in range(samples.shape[1])], dim=1)
    return float(normalised.std(dim=1).mean())


def test_the_flow_learns_to_remove_the_noise_of_a_deterministic_expert() -> None:
    """Samples of a single-valued target concentrate on it: the chunk head maps every noise
    draw to the chunk. (The direct-velocity head of the same width kept noise-sized spread:
    it never learnt the -x part of the velocity.)"""
    policy = tiny_policy(horizon=8)
    obs, targets = _fit_deterministic_targets(policy)
    policy.flow_steps = 10
    assert _normalised_spread(policy, obs) < 0.2
    error = (policy.sample_actions(obs, 4).mean(dim=1) - targets).abs().mean().item()
    assert error < 0.25, error


def test_checkpoints_without_head_output_load_as_velocity_heads(tmp_path: Path) -> None:
    policy = tiny_policy(head_output="velocity")
    policy.save(tmp_path / "old")
    meta_path = tmp_path / "old" / "policy.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["head_output"]
    meta_path.write_text(json.dumps(meta))
    loaded = load_policy(tmp_path / "old")
    assert isinstance(loaded, BuiltinPolicy)
    assert loaded.config.head_output == "velocity"
    assert tiny_policy().config.head_output == "chunk", "new policies predict the chunk"
    with pytest.raises(PolicyError, match="head_output"):
        tiny_policy(head_output="noise")


def test_save_load_round_trip(tmp_path: Path) -> None:
    policy = tiny_policy()
    with torch.no_grad():
        policy.state_mean += 0.25
    digest = policy.save(tmp_path / "ckpt", version="bc-test")
    assert digest == checkpoint_sha256(tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "policy.json").read_text())
    assert meta["kind"] == "builtin" and meta["sha256"] == digest
    assert meta["joint_names"] == JOINTS and meta["cameras"] == CAMERAS
    loaded = load_policy(tmp_path / "ckpt", expected_sha256=digest)
    assert isinstance(loaded, BuiltinPolicy)
    assert loaded.version == "bc-test"
    for key, value in policy.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    torch.manual_seed(3)
    a = policy.predict_chunk(observation())
    torch.manual_seed(3)
    b = loaded.predict_chunk(observation())
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_wrong_expected_sha_is_refused(tmp_path: Path) -> None:
    tiny_policy().save(tmp_path / "ckpt")
    with pytest.raises(PolicyError, match="sha256"):
        load_policy(tmp_path / "ckpt", expected_sha256="0" * 64)


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    tiny_policy().save(tmp_path / "ckpt")
    weights = tmp_path / "ckpt" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(PolicyError, match="sha256"):
        load_policy(tmp_path / "ckpt")


def test_checkpoint_outside_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    root.mkdir()
    tiny_policy().save(tmp_path / "elsewhere")
    with pytest.raises(PolicyError, match="outside the checkpoint root"):
        load_policy(tmp_path / "elsewhere", root=root)
    # A symlink inside the root pointing outside is resolved, and refused too.
    (root / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PolicyError, match="outside the checkpoint root"):
        load_policy(root / "link", root=root)
    tiny_policy().save(root / "good")
    assert load_policy(root / "good", root=root).action_dim == 4


def test_pickle_weights_are_never_loaded(tmp_path: Path) -> None:
    policy = tiny_policy()
    policy.save(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.safetensors").unlink()
    torch.save(policy.state_dict(), tmp_path / "ckpt" / "model.bin")
    with pytest.raises(PolicyError, match="can run code"):
        load_policy(tmp_path / "ckpt")


def test_torch_file_is_read_weights_only(tmp_path: Path) -> None:
    policy = tiny_policy()
    policy.save(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.safetensors").unlink()

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "ckpt" / "model.pt")
    meta_path = tmp_path / "ckpt" / "policy.json"
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = checkpoint_sha256(tmp_path / "ckpt")
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(PolicyError, match="cannot read weights"):
        load_policy(tmp_path / "ckpt")


@pytest.mark.parametrize("content, match", [
    (None, "neither policy.json"),
    ("not json", "unreadable"),
    (json.dumps({"kind": "other"}), "kind"),
])
def test_broken_checkpoint_dirs_give_clear_errors(tmp_path: Path, content: str | None,
                                                  match: str) -> None:
    directory = tmp_path / "ckpt"
    directory.mkdir()
    if content is not None:
        (directory / "policy.json").write_text(content)
        tiny_policy().save(tmp_path / "other")
        (directory / "model.safetensors").write_bytes(
            (tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(PolicyError, match=match):
        load_policy(directory)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such directory"):
        load_policy(tmp_path / "nope")


def test_config_mismatch_between_json_and_weights(tmp_path: Path) -> None:
    tiny_policy().save(tmp_path / "ckpt")
    meta_path = tmp_path / "ckpt" / "policy.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["hidden_dim"] = 48
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(PolicyError, match="do not match"):
        load_policy(tmp_path / "ckpt")
