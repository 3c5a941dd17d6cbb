"""Full-size reward model: PaliGemma-3B (or PaliGemma 2 3B) from its released big_vision checkpoint, on real data.

  python -m lrm_jax.main --config=configs/reward_model/paligemma_3b.py:ckpt=/ckpt/pt_224.npz,tokenizer=/ckpt/tokenizer.model,root=/data --workdir=gs://bucket/lrm_3b
  # PaliGemma 2: variant=paligemma2_3b,ckpt=/ckpt/paligemma2-3b-pt-224.b16.npz

Same job and code path as cpu_demo.py; only sizes, data and the starting point change. `root` holds the datasets
listed in configs/reward_data_mixture.py (Open-X, LIBERO, RoboCasa, EgoDex, HOI4D, SSv2, EPIC-KITCHENS and the
suite's own `lrm_bench/1.0.0` from the datagen job); nothing is generated. Held-out evaluation episodes are
simulated once (GPU/TPU recommended) and cached under W/eval. Mesh: FSDP over every device by default
(`mesh_data=N` for N-way pure data parallelism on top); bfloat16 compute with float32 params and optimizer state.
Args: variant, ckpt, tokenizer, root, res, steps, batch (global), lr, freeze_img (steps to keep the image tower
frozen; -1 = always, 0 = never), mesh_data, eval_episodes, seed.
"""
import ml_collections

from lrm_jax.envs import splits
from lrm_jax.utils import config_args


def get_config(arg=None):
  a = config_args.parse_arg(arg, variant="paligemma_3b", ckpt="", tokenizer="", root="data", res=224, steps=20_000,
                            batch=256, lr=1e-5, freeze_img=-1, mesh_data=1, eval_episodes=64, seed=0)
  c = ml_collections.ConfigDict()
  c.job = "reward_model"
  c.seed = a.seed
  c.data = config_args.load_sibling(__file__, "../reward_data.py", f"real,root={a.root},image_size={a.res}")
  c.sources_root = c.data.root                 # the real datasets; `sources.json` marks them as ready
  c.text_len = 48
  c.val_batches = 16
  c.eval_data = config_args.load_sibling(__file__, "../datagen.py", f"episodes_per_task={a.eval_episodes},"
                                         f"image_size={a.res},batch_size=64,seed={a.seed + 1000},videos=false")
  c.eval_data.tasks = tuple(sorted(splits.HELD_OUT_TASKS))
  c.image_size = a.res
  c.model = dict(variant=a.variant, dtype="bfloat16", remat=True, scan_unroll=1, img={}, llm={})
  c.init = dict(ckpt=a.ckpt, tokenizer=a.tokenizer)  # both required for real weights (Gemma's 257k vocabulary)
  c.batch_size = a.batch
  c.total_steps = a.steps
  c.optim = dict(lr=a.lr, warmup_steps=500, weight_decay=1e-4, b1=0.9, b2=0.999, grad_clip=1.0,
                 end_lr_factor=0.01)
  c.freeze = (("img/.*", a.freeze_img),) if a.freeze_img else ()
  c.mesh = dict(data=a.mesh_data, fsdp=-1)
  # The stream is cut into this many shards by trajectory, each process reading its own (0: one per process).
  # Fix it (e.g. to the largest process count) to train on the same global batches on any number of hosts.
  c.data_shards = 0
  c.param_sharding = "fsdp"
  c.log_every = 50
  c.eval_every = 1000
  c.checkpoint_every = 1000
  c.keep_checkpoints = 3
  c.eval = dict(interval=10, batch_size=256, baselines=("untrained", "vlmrm", "pixel_change"), explain=16, bootstrap=1000)
  c.compile_cache_dir = ""
  return c
