"""Typed configuration of the reference agents (one dataclass; the four agents differ by its fields)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class AgentConfig:
    """Everything a reference agent is built from. Defaults are CPU-sized (a few hundred env steps).

    Each of the four agents fixes the fields that define it (see ``baselines/*.py``); the others are
    tuning knobs that a suite may pass as ``agent_kwargs``.

    Veto threshold rule: with ``false_veto_rate = r`` (and not ``fixed_threshold``) the threshold is set
    after pre-training to the ``ceil((1 - r) n)``-th smallest cost-critic score of the ``n`` safe logged
    actions (held-out episodes when they hold at least ``ceil(1 / r)`` safe actions, else the training
    ones), so at most a fraction ``r`` of safe logged actions is vetoed; otherwise ``veto_threshold``.
    """

    # ---- representation ------------------------------------------------------------------------
    backbone: str | None = None
    """open_clip model name of the backbone (e.g. ``"ViT-B-32"``); ``None``: the embedded default."""
    backbone_pretrained: str | None = "default"
    """Weights of the backbone (``load_backbone``'s ``pretrained``): ``"default"`` (the embedded
    checkpoint; default model only), an open_clip pretrained tag (e.g. ``"laion2b_s34b_b79k"`` for
    ViT-B-32, downloaded by open_clip where the network allows), a local checkpoint path, or ``None``
    (random weights)."""
    adapter: str | None = "lora"
    """Adapter kind added to the frozen vision tower (``"lora"``, ``"bottleneck"``) or ``None`` (``"none"`` in a
    TOML suite, which cannot write ``None``)."""
    adapter_rank: int = 4
    """LoRA rank (or bottleneck width / 8) of the adapter."""
    adapter_placement: str = "top"
    """Which vision blocks get adapters (``AdapterConfig.placement``)."""
    train_backbone: bool = False
    """Make every backbone weight trainable (full fine-tuning)."""
    pool: str = "spatial_softmax"
    """How each camera's image becomes a feature: a learned head over the backbone's patch tokens
    (``"spatial_softmax"`` keypoints or ``"attention"`` pooling) followed by the pooled embedding, or the
    pooled ``"embedding"`` alone (``safeadapt_bench.pooling``)."""
    keypoints: int = 32
    """Keypoints per camera of ``"spatial_softmax"``."""
    pool_tokens: str = "last"
    """Patch tokens the pooling head reads: ``"last"`` block's, ``"first"`` (the patch embedding's) or
    ``"both"`` (``BackboneExtractor``)."""
    pool_embedding: bool = True
    """With a pooling head, append each camera's pooled embedding to the head's output."""
    keypoint_features: int = 0
    """Learned token projections read at each ``"spatial_softmax"`` keypoint (what is there, not only where)."""
    keypoint_depth: bool = False
    """Read each camera's depth at every ``"spatial_softmax"`` keypoint (3-D keypoints)."""
    instruction: bool = True
    """Feed the instruction embedding to the policy (``False``: the policy ignores the instruction)."""
    object_keypoints: bool = False
    """Add each camera's object location and depth from the backbone's object head (fitted on every
    category with the spatial objective; ``safeadapt_bench.backbones.object_head``)."""
    object_points: bool = False
    """Add each camera's 3-D object point: the depth pixels under the object head's attention,
    back-projected through the camera calibration (``safeadapt_bench.depth_points``)."""
    camera_calibration: dict | None = None
    """The cameras' calibration for ``object_points`` (``env.unwrapped.camera_calibration()``);
    ``None``: the Panda scene's."""
    point_noise: float = 0.0
    """Std (metres) of Gaussian noise on each ``object_points`` point in training (augmentation)."""
    point_gate: float | None = None
    """With ``object_points``: where a later camera's point is farther than this (metres) from the first
    camera's, the higher of the two becomes the lower (a view that lost the object attends to the gripper,
    above it); ``None``: off."""
    proprio: str = "full"
    """What the policy reads of ``proprio``: ``"full"`` (joints included) or ``"eef"`` (the end effector's
    pose and the gripper's aperture: the same on every robot, for cross-embodiment)."""
    locate_with_adapters: bool = True
    """The object head (``object_keypoints``, ``object_points``) reads the adapted tokens; ``False``: the
    backbone's own, adapters disabled (the tokens it was fitted on), so that adapters tuned on one robot's
    images cannot move the object locator on another robot's."""
    net_arch: tuple[int, ...] = (256, 256)
    """Hidden sizes of the actor, critic and cost-critic heads."""

    # ---- safety machinery ----------------------------------------------------------------------
    cost_critic: bool = True
    """Learn a cost critic ``Q_c(s, a)`` (offline on the logs, then online)."""
    cost_gamma: float = 0.6
    """Discount of the cost critic. ``Q_c`` predicts the discounted cost *rate*
    ``(1 - g) * sum_k g^k c_{t+k}`` in ``[0, 1]``: 0.6 looks about 2-3 steps ahead."""
    veto: bool = False
    """Filter every executed action through the candidate-sampling veto (needs ``cost_critic``)."""
    veto_threshold: float = 0.3
    """Candidates whose predicted cost rate is above this are vetoed (the fixed threshold, used when
    ``false_veto_rate`` is ``None``)."""
    false_veto_rate: float | None = None
    """Calibrate the threshold after pre-training instead of fixing it: with ``r`` (``0 < r < 1``) the
    threshold is the ``ceil((1 - r) n)``-th smallest cost-critic score of the ``n`` safe logged actions
    (no cost in the action's ``window``), so at most a fraction ``r`` of safe logged actions would be
    vetoed. The held-out episodes' safe actions are used when there are at least ``ceil(1 / r)``, else the
    training episodes' (``baselines.common.critic``). A suite sets it for every agent with
    ``settings.false_veto_rate``."""
    fixed_threshold: bool = False
    """Keep ``veto_threshold`` even when a ``false_veto_rate`` is given (the fixed-threshold ablation; a
    TOML suite cannot write ``None``)."""
    veto_enforce: bool = True
    """Replace vetoed actions. ``False`` (the "veto off" ablation) keeps the critic training and scoring
    every proposal, counts what it would veto, and executes the proposal."""
    mixed_logs: bool = True
    """Take the suite's mixed logs (``settings.log_mix``) when the agent learns a cost critic; ``False``:
    the suite's ``dataset_policy`` logs alone (the expert-only ablation)."""
    veto_candidates: int = 16
    """Candidate actions sampled from the actor besides the proposed one."""
    veto_uniform_candidates: int = 0
    """Candidates drawn uniformly from the action box as well: moves the actor would not propose (turning
    back from a joint limit), so that a state where every action near the actor's is unsafe has an exit."""
    veto_choice: str = "nearest"
    """Replacement for a vetoed action: the passing candidate ``"nearest"`` to it, or ``"best_q"``."""
    lagrangian: bool = False
    """SAC-Lagrangian: add ``lambda * Q_c(s, pi(s))`` to the actor loss and learn ``lambda``."""
    cost_limit: float = 0.05
    """Target cost rate of the Lagrangian (fraction of unsafe steps allowed)."""
    lagrange_lr: float = 0.01
    """Learning rate of the multiplier (Adam on softplus^-1 of lambda)."""
    lagrange_init: float = 0.1
    """Initial multiplier."""

    # ---- pre-training on the logs --------------------------------------------------------------
    contrastive: bool = True
    """InfoNCE alignment of the adapter's image embedding with (state, action) window embeddings."""
    behaviour_cloning: bool = True
    """Warm-start the actor on the logged actions."""
    critic_pretrain: bool = False
    """Fit SAC's reward critics offline to the logs' discounted returns (Monte Carlo, ``gamma``) before
    adaptation, so that adaptation does not start from random critics."""
    window: int = 4
    """Steps in each (state, action) window of the contrastive and offline cost targets."""
    pretrain_updates: int = 3000
    """Gradient updates of pre-training (the harness budget may cut them shorter)."""
    pretrain_seconds: float = 600.0
    """Wall-clock cap of pre-training (the harness budget may be shorter)."""
    pretrain_batch_size: int = 256
    """Frames per pre-training batch (also the in-batch negatives of InfoNCE)."""
    val_fraction: float = 0.1
    """Last fraction of the logged episodes held out to report the behaviour-cloning validation loss."""
    cache_frames: bool = True
    """Cache the frozen part's output per logged frame on disk (``$SAFEADAPT_CACHE/frames``)."""
    colour_copies: int = 0
    """Colour augmentation of behaviour cloning: this many hue-shifted copies of every logged training
    frame (each episode's copy with its own shift of the colour wheel; depth untouched), their frozen
    tokens cached like the originals; each BC sample draws the original or a copy. 0: off."""
    pretrain_lr: float = 1e-3
    """Adam learning rate of pre-training."""
    temperature: float = 0.1
    """InfoNCE temperature."""

    # ---- SAC -----------------------------------------------------------------------------------
    learning_rate: float = 3e-4
    """Adam learning rate of SAC (actor, critic, cost critic)."""
    buffer_size: int = 5000
    """Replay buffer capacity (transitions)."""
    batch_size: int = 16
    """SAC minibatch size."""
    learning_starts: int = 32
    """Env steps before SAC updates start (with pre-training the actor acts from step 0)."""
    train_freq: int = 4
    """Env steps between SAC updates."""
    gradient_steps: int = 1
    """Gradient steps per update (so at most one per env step)."""
    gamma: float = 0.95
    """Reward discount."""
    bc_weight: float = 0.0
    """Behaviour-cloning anchor while adapting (TD3+BC): each SAC actor update adds ``bc_weight * mean|Q|``
    times the behaviour-cloning loss on a batch of the pre-training logs; 0 turns it off."""
    actor_learning_rate: float | None = None
    """Adam learning rate of the actor while adapting (``None``: ``learning_rate``). A slower actor than
    critic keeps a cloned policy while the critic, fresh at the start of adaptation, is still wrong."""
    ent_coef: str | float = "auto_0.05"
    """SAC entropy coefficient (``"auto_<init>"`` learns it)."""
    context_length: int = 0
    """Instruction token ids fed to the text tower; 0: the backbone's own context length."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for the SB3 ``SAC`` constructor."""

    def __post_init__(self) -> None:
        from safeadapt_bench.pooling import POOLS

        self.net_arch = tuple(int(w) for w in self.net_arch)
        if self.adapter == "none":
            self.adapter = None
        if self.pool not in POOLS:
            raise ValueError(f"AgentConfig: unknown pool {self.pool!r}; choose one of {list(POOLS)}.")
        if self.backbone is not None and self.backbone_pretrained == "default":
            raise ValueError(
                f"AgentConfig: backbone={self.backbone!r} needs backbone_pretrained: an open_clip pretrained "
                "tag (e.g. 'laion2b_s34b_b79k' or 'openai' for ViT-B-32), a local checkpoint path, or None "
                "for random weights; 'default' is the embedded backbone's own checkpoint."
            )
        if isinstance(self.colour_copies, bool) or not isinstance(self.colour_copies, int) or self.colour_copies < 0:
            raise ValueError(f"AgentConfig: colour_copies must be a whole number >= 0 (0: off), "
                             f"not {self.colour_copies!r}.")
        if (self.veto or self.lagrangian) and not self.cost_critic:
            raise ValueError("AgentConfig: veto and lagrangian need cost_critic=True.")
        if self.false_veto_rate is not None:
            from safeadapt_bench.baselines.common.critic import check_false_veto_rate

            self.false_veto_rate = check_false_veto_rate(self.false_veto_rate)
        if self.adapter is None and not self.train_backbone:
            self.contrastive = False  # nothing trainable in the vision tower to align

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (for saving)."""
        d = asdict(self)
        d["net_arch"] = list(self.net_arch)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentConfig:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        if "net_arch" in data:
            data["net_arch"] = tuple(data["net_arch"])
        return cls(**data)
