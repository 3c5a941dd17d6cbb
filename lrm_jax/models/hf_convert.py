"""Conversion between our (big_vision-layout) PaliGemma params and Hugging Face `transformers` PaliGemma.

Used by the parity test and the throughput benchmark (the independent reference implementation), and to load
Hugging Face PaliGemma weights (`from_hf_state_dict`). numpy in, numpy out: no torch import here.
Torch Linear weights are [out, in]; our Dense/einsum kernels are [in, ...out].
"""
import numpy as np

from lrm_jax.models import gemma, vit


def hf_config_kwargs(model, image_size: int) -> dict:
  """Keyword arguments for `transformers.PaliGemmaConfig` describing the same network as `model`."""
  llm_cfg = dict(model.llm_config)
  llm = gemma.get_config(llm_cfg.pop("variant", "gemma_tiny"), **llm_cfg)
  img_cfg = dict(model.img_config)
  img = vit.get_variant(img_cfg.pop("variant", "mu/8"))
  img.update(img_cfg)
  gemma2 = llm.get("post_norms", False)
  text = dict(
      model_type="gemma2" if gemma2 else "gemma", hidden_size=llm["width"], intermediate_size=llm["mlp_dim"],
      num_hidden_layers=llm["depth"], num_attention_heads=llm["num_heads"],
      num_key_value_heads=llm["num_kv_heads"], head_dim=llm["head_dim"], vocab_size=llm.get("vocab_size", 257152),
      hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6, rope_theta=10000.0,
      max_position_embeddings=8192)
  if gemma2:
    text.update(attn_logit_softcapping=llm.get("attn_logits_softcap"),
                final_logit_softcapping=llm.get("final_logits_softcap"),
                query_pre_attn_scalar=(llm["head_dim"] if llm.get("query_pre_attn_norm", "rsqrt_head_dim")
                                       == "rsqrt_head_dim" else llm["width"] // llm["num_heads"]),
                sliding_window=llm.get("sliding_window") or 8192)
  vision = dict(model_type="siglip_vision_model", hidden_size=img["width"], intermediate_size=img["mlp_dim"],
                num_hidden_layers=img["depth"], num_attention_heads=img["num_heads"],
                patch_size=img["patch_size"][0], image_size=image_size, vision_use_head=False,
                hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, projection_dim=llm["width"])
  vocab = text["vocab_size"]
  return dict(vision_config=vision, text_config=text, vocab_size=vocab, projection_dim=llm["width"],
              hidden_size=llm["width"], image_token_index=vocab - 1)


def _t(x):
  return np.ascontiguousarray(np.asarray(x, np.float32).T)


def to_hf_state_dict(params: dict, gemma2: bool) -> dict:
  """Our param tree -> `PaliGemmaForConditionalGeneration.state_dict()` names (transformers 4.5x layout)."""
  out = {}
  img, llm = params["img"], params["llm"]
  v = "model.vision_tower.vision_model."
  out[v + "embeddings.patch_embedding.weight"] = np.transpose(img["embedding"]["kernel"], (3, 2, 0, 1))
  out[v + "embeddings.patch_embedding.bias"] = img["embedding"]["bias"]
  out[v + "embeddings.position_embedding.weight"] = img["pos_embedding"][0]
  blk = img["Transformer"]["encoderblock"]
  att = blk["MultiHeadDotProductAttention_0"]
  for l in range(blk["LayerNorm_0"]["scale"].shape[0]):
    p = f"{v}encoder.layers.{l}."
    for ours, theirs in (("LayerNorm_0", "layer_norm1"), ("LayerNorm_1", "layer_norm2")):
      out[p + theirs + ".weight"] = blk[ours]["scale"][l]
      out[p + theirs + ".bias"] = blk[ours]["bias"][l]
    for ours, theirs in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj")):
      k = att[ours]["kernel"][l]  # [D, N, H]
      out[p + f"self_attn.{theirs}.weight"] = _t(k.reshape(k.shape[0], -1))
      out[p + f"self_attn.{theirs}.bias"] = att[ours]["bias"][l].reshape(-1)
    k = att["out"]["kernel"][l]  # [N, H, D]
    out[p + "self_attn.out_proj.weight"] = _t(k.reshape(-1, k.shape[-1]))
    out[p + "self_attn.out_proj.bias"] = att["out"]["bias"][l]
    for ours, theirs in (("Dense_0", "fc1"), ("Dense_1", "fc2")):
      out[p + f"mlp.{theirs}.weight"] = _t(blk["MlpBlock_0"][ours]["kernel"][l])
      out[p + f"mlp.{theirs}.bias"] = blk["MlpBlock_0"][ours]["bias"][l]
  out[v + "post_layernorm.weight"] = img["Transformer"]["encoder_norm"]["scale"]
  out[v + "post_layernorm.bias"] = img["Transformer"]["encoder_norm"]["bias"]
  out["model.multi_modal_projector.linear.weight"] = _t(img["head"]["kernel"])
  out["model.multi_modal_projector.linear.bias"] = img["head"]["bias"]

  t = "model.language_model."
  out[t + "embed_tokens.weight"] = llm["embedder"]["input_embedding"]
  out["lm_head.weight"] = llm["embedder"]["input_embedding"]  # tied
  lay = llm["layers"]
  norms = {"pre_attention_norm": "input_layernorm"}
  if gemma2:
    norms.update(post_attention_norm="post_attention_layernorm", pre_ffw_norm="pre_feedforward_layernorm",
                 post_ffw_norm="post_feedforward_layernorm")
  else:
    norms.update(pre_ffw_norm="post_attention_layernorm")  # Gemma 1's HF name for the pre-MLP norm
  for l in range(lay["attn"]["q_einsum"]["w"].shape[0]):
    p = f"{t}layers.{l}."
    q = lay["attn"]["q_einsum"]["w"][l]  # [N, D, H]
    kv = lay["attn"]["kv_einsum"]["w"][l]  # [2, K, D, H]
    heads_out = lambda w: np.transpose(w, (0, 2, 1)).reshape(-1, w.shape[1])  # [N, D, H] -> [N*H, D]
    out[p + "self_attn.q_proj.weight"] = heads_out(q)
    out[p + "self_attn.k_proj.weight"] = heads_out(kv[0])
    out[p + "self_attn.v_proj.weight"] = heads_out(kv[1])
    o = lay["attn"]["attn_vec_einsum"]["w"][l]  # [N, H, D]
    out[p + "self_attn.o_proj.weight"] = _t(o.reshape(-1, o.shape[-1]))
    out[p + "mlp.gate_proj.weight"] = _t(lay["mlp"]["gating_einsum"][l][0])
    out[p + "mlp.up_proj.weight"] = _t(lay["mlp"]["gating_einsum"][l][1])
    out[p + "mlp.down_proj.weight"] = _t(lay["mlp"]["linear"][l])
    for ours, theirs in norms.items():
      out[p + theirs + ".weight"] = lay[ours]["scale"][l]
  out[t + "norm.weight"] = llm["final_norm"]["scale"]
  return {k: np.ascontiguousarray(np.asarray(x, np.float32)) for k, x in out.items()}


def from_hf_state_dict(sd: dict, gemma2: bool, num_heads: int, num_kv_heads: int, vit_heads: int) -> dict:
  """Inverse of `to_hf_state_dict` (numpy arrays keyed by HF names) -> our nested param tree."""
  sd = {k: np.asarray(x, np.float32) for k, x in sd.items()}
  v = "model.vision_tower.vision_model."
  n_vit = len({k.split(".")[4] for k in sd if k.startswith(v + "encoder.layers.")})
  t = "model.language_model."
  n_llm = len({k.split(".")[3] for k in sd if k.startswith(t + "layers.")})
  stack = lambda fn, n: np.stack([fn(l) for l in range(n)])
  d_vit = sd[v + "post_layernorm.weight"].shape[0]
  hv = d_vit // vit_heads
  vl = lambda l, name: sd[f"{v}encoder.layers.{l}.{name}"]
  att = {}
  for ours, theirs in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj")):
    att[ours] = dict(kernel=stack(lambda l: vl(l, f"self_attn.{theirs}.weight").T.reshape(d_vit, vit_heads, hv), n_vit),
                     bias=stack(lambda l: vl(l, f"self_attn.{theirs}.bias").reshape(vit_heads, hv), n_vit))
  att["out"] = dict(kernel=stack(lambda l: vl(l, "self_attn.out_proj.weight").T.reshape(vit_heads, hv, d_vit), n_vit),
                    bias=stack(lambda l: vl(l, "self_attn.out_proj.bias"), n_vit))
  ln = lambda name: dict(scale=stack(lambda l: vl(l, name + ".weight"), n_vit),
                         bias=stack(lambda l: vl(l, name + ".bias"), n_vit))
  dense = lambda name: dict(kernel=stack(lambda l: vl(l, f"mlp.{name}.weight").T, n_vit),
                            bias=stack(lambda l: vl(l, f"mlp.{name}.bias"), n_vit))
  img = dict(
      embedding=dict(kernel=np.transpose(sd[v + "embeddings.patch_embedding.weight"], (2, 3, 1, 0)),
                     bias=sd[v + "embeddings.patch_embedding.bias"]),
      pos_embedding=sd[v + "embeddings.position_embedding.weight"][None],
      Transformer=dict(
          encoderblock=dict(LayerNorm_0=ln("layer_norm1"), LayerNorm_1=ln("layer_norm2"),
                            MultiHeadDotProductAttention_0=att,
                            MlpBlock_0=dict(Dense_0=dense("fc1"), Dense_1=dense("fc2"))),
          encoder_norm=dict(scale=sd[v + "post_layernorm.weight"], bias=sd[v + "post_layernorm.bias"])),
      head=dict(kernel=sd["model.multi_modal_projector.linear.weight"].T,
                bias=sd["model.multi_modal_projector.linear.bias"]))
  tl = lambda l, name: sd[f"{t}layers.{l}.{name}"]
  d = sd[t + "norm.weight"].shape[0]
  h = sd[t + "layers.0.self_attn.q_proj.weight"].shape[0] // num_heads
  heads_in = lambda w, n: np.transpose(w.reshape(n, h, d), (0, 2, 1))  # [N*H, D] -> [N, D, H]
  norms = {"pre_attention_norm": "input_layernorm"}
  if gemma2:
    norms.update(post_attention_norm="post_attention_layernorm", pre_ffw_norm="pre_feedforward_layernorm",
                 post_ffw_norm="post_feedforward_layernorm")
  else:
    norms.update(pre_ffw_norm="post_attention_layernorm")
  layers = dict(
      attn=dict(
          q_einsum=dict(w=stack(lambda l: heads_in(tl(l, "self_attn.q_proj.weight"), num_heads), n_llm)),
          kv_einsum=dict(w=stack(lambda l: np.stack([heads_in(tl(l, "self_attn.k_proj.weight"), num_kv_heads),
                                                     heads_in(tl(l, "self_attn.v_proj.weight"), num_kv_heads)]),
                                 n_llm)),
          attn_vec_einsum=dict(w=stack(lambda l: tl(l, "self_attn.o_proj.weight").T.reshape(num_heads, h, d),
                                       n_llm))),
      mlp=dict(gating_einsum=stack(lambda l: np.stack([tl(l, "mlp.gate_proj.weight").T,
                                                       tl(l, "mlp.up_proj.weight").T]), n_llm),
               linear=stack(lambda l: tl(l, "mlp.down_proj.weight").T, n_llm)),
      **{ours: dict(scale=stack(lambda l, th=theirs: tl(l, th + ".weight"), n_llm)) for ours, theirs in norms.items()})
  llm = dict(embedder=dict(input_embedding=sd[t + "embed_tokens.weight"]), layers=layers,
             final_norm=dict(scale=sd[t + "norm.weight"]))
  return dict(img=img, llm=llm)
