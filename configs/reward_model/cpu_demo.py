"""Reward model on CPU in minutes: simulated training sources -> train -> zero-shot evaluation on held-out tasks.

  python -m lrm_jax.main --config=configs/reward_model/cpu_demo.py --workdir=W

Writes W/sources (training-task episodes in three real on-disk formats, reused when present), W/checkpoints
(orbax; a rerun resumes), W/tb, W/eval/metrics.json (trained model, untrained model and VLM-RM baseline on the
held-out tasks), W/eval/*.png plots and W/eval/explain.jsonl (free-text answers).
Args: steps, batch, episodes (per training task), eval_episodes (per held-out task), seed, sources (an existing
sources root to reuse, e.g. another run's W/sources), res (image size), width / depth / img_depth / patch (model
size), lr, tower_steps (image-tower pretraining steps, 0 = none), tasks ("+"-separated training tasks; default all),
text_len (tokens per example, padded).
"""
import ml_collections

from lrm_jax.envs import splits
from lrm_jax.utils import config_args


def get_config(arg=None):
  a = config_args.parse_arg(arg, steps=600, batch=32, episodes=8, eval_episodes=12, seed=0, sources="", res=64,
                            width=128, depth=4, img_depth=0, patch=16, lr=1e-3, tower_steps=500, tasks="",
                            text_len=48)
  c = ml_collections.ConfigDict()
  c.job = "reward_model"
  c.seed = a.seed
  # ---- data -------------------------------------------------------------------------------------------------
  c.data = config_args.load_sibling(__file__, "../reward_data.py",
                                    f"episodes_per_task={a.episodes},image_size={a.res},seed={a.seed},"
                                    f"tasks={a.tasks}")
  c.sources_root = a.sources                   # "" -> W/sources (built once, reused on resume)
  # bos + "Task: ..." + "\n" + question + answer + eos, padded; 48 fits every training phrasing with the shipped
  # tokenizer (47 tokens: the longest phrasing of the compositions; checked before the sources are built)
  c.text_len = a.text_len
  c.val_batches = 8                            # fixed validation batches (training tasks, other seed, no augment)
  # Held-out evaluation episodes: the suite's noisy experts on tasks the reward model never sees in training.
  c.eval_data = config_args.load_sibling(__file__, "../datagen.py", f"episodes_per_task={a.eval_episodes},"
                                         f"image_size={a.res},batch_size=24,seed={a.seed + 1000},videos=false")
  c.eval_data.tasks = tuple(sorted(splits.HELD_OUT_TASKS))
  c.eval_data.appearance_strength = 0.5
  c.eval_data.semantic_seg = True              # + scene state: the image tower is measured on held-out frames too
  # ---- model ------------------------------------------------------------------------------------------------
  c.image_size = a.res
  tower = dict(width=a.width, depth=a.depth, mlp_dim=4 * a.width, num_heads=4)
  c.model = dict(variant="tiny", dtype="float32", remat=False, scan_unroll=1,
                 img=dict(variant=f"mu/{a.patch}", **dict(tower, depth=a.img_depth or a.depth)),
                 llm=dict(variant="gemma_tiny", **tower, num_kv_heads=1, head_dim=a.width // 4))
  c.init = dict(ckpt="", tokenizer="")         # big_vision .npz / SentencePiece .model; "" = random / shipped
  # No released checkpoint on CPU: the image tower is first pretrained on the sources' segmented frames (dense
  # per-pixel object classes; lrm_jax/train/tower_pretrain.py), the stand-in for SigLIP's pretraining. 0 = off.
  c.tower = dict(steps=a.tower_steps, batch_size=32, lr=1e-3, seed=a.seed)
  # ---- training ---------------------------------------------------------------------------------------------
  c.batch_size = a.batch
  c.total_steps = a.steps
  c.optim = dict(lr=a.lr, warmup_steps=100, weight_decay=1e-4, b1=0.9, b2=0.99, grad_clip=1.0,
                 end_lr_factor=0.05)
  c.freeze = ()                                # e.g. (("img/.*", -1),) to keep the image tower frozen
  # A first stage on some questions only (0 steps = none): W/warmup, then `total_steps` on all of them from there.
  c.warmup = dict(steps=0, kinds=("contrastive",))
  c.mesh = dict(data=1, fsdp=-1)
  # The stream is cut into this many shards by trajectory, each process reading its own (0: one per process).
  # Fix it (e.g. to the largest process count) to train on the same global batches on any number of hosts.
  c.data_shards = 0
  c.param_sharding = "fsdp"
  c.log_every = 25
  c.eval_every = 200
  c.checkpoint_every = 100
  c.keep_checkpoints = 2
  # ---- evaluation -------------------------------------------------------------------------------------------
  c.eval = dict(interval=10, batch_size=64, baselines=("untrained", "vlmrm", "pixel_change"), explain=8, bootstrap=300)
  c.compile_cache_dir = ""
  return c
