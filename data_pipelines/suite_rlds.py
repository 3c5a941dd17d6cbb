"""The suite's own RLDS dataset (`lrm_bench/1.0.0`, written by datagen through TFDS) -> Trajectory records.

Carries what the other sources lack: an explicit success flag, failure-mode name and privileged per-step stage.
"""
from data_pipelines import tfds_io
from data_pipelines.errors import DataFormatError
from data_pipelines.record import decode_text
from data_pipelines.rlds import RldsReader

_META = "episode_metadata/"


def _meta_text(meta, key):
  return decode_text(meta[_META + key]) if _META + key in meta else None


class SuiteRldsReader(RldsReader):
  """Reads `lrm_bench/<version>/`. `exclude_tasks` drops held-out tasks (by episode_metadata/task)."""

  def __init__(self, path, *, split: str = "train", **kw):
    super().__init__(path, image_key="observation/image", instruction_key="language_instruction",
                     source="lrm_bench", split=split,
                     success_fn=lambda steps, meta: bool(meta[_META + "success"]),
                     task_fn=lambda steps, meta: _meta_text(meta, "task"), **kw)

  def _check_keys(self, builder):
    super()._check_keys(builder)
    eps = tfds_io.episode_keys(builder)
    for key in ("task", "success"):
      if _META + key not in eps:
        raise DataFormatError(self.path, _META + key, "an lrm_bench episode metadata field",
                              f"episode keys {eps}")

  def _to_record(self, where, i, steps, meta):
    traj = super()._to_record(where, i, steps, meta)
    for key in ("embodiment", "noise", "file_path"):
      if _META + key in meta:
        traj.metadata[key] = _meta_text(meta, key)
    for key in ("seed", "num_stages"):
      if _META + key in meta:
        traj.metadata[key] = int(meta[_META + key])
    return traj
