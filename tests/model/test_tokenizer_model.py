"""Tokenizer round trips, the model's shapes and its KV accounting."""

from __future__ import annotations

import pytest
import torch

from vprim.assets.model.model import SIZES, CompactVLM, ModelConfig, kv_accounting
from vprim.assets.model.tokenizer import SPECIALS, Tokenizer

TEXT = "<|ref|>dog<|/ref|><|box|>[[12,0,999,540],[3,4,5,6]]<|/box|>\nAnswer: 2"


def test_tokenizer_round_trip_and_single_token_pieces():
    tok = Tokenizer.build(["How many dogs are there?", "dog dog"], min_count=1)
    ids = tok.encode(TEXT)
    assert tok.decode(ids) == TEXT
    for s in SPECIALS:  # each special is one token
        assert tok.encode(s) == [tok.ids[s]]
    for n in (0, 7, 999):  # each coordinate bin is one token
        assert tok.encode(str(n)) == [tok.ids[f"<{n}>"]]
    assert len(tok.encode("1234")) == 4  # beyond the bins: digits
    assert tok.encode("dog") == [tok.ids["dog"]]  # a vocabulary word
    assert tok.decode(tok.encode("zebra")) == "zebra"  # unknown words fall back to letters
    assert tok.decode(tok.encode("é")) == "<unk>"
    assert Tokenizer.from_json(tok.to_json()).pieces == tok.pieces


@pytest.mark.parametrize(
    "side,entries,pixels",
    [
        (756, 81, 7056.0),  # the report: 2,916 patches -> 324 -> 81 entries
        (800, 91, 7033.0),  # 57x57 patches, cut to 57 = 19*3 -> 361 tokens -> ceil(361/4)
    ],
)
def test_kv_accounting(side, entries, pixels):
    kv = kv_accounting(side, side)
    assert kv["kv_entries"] == entries
    assert kv["pixels_per_entry"] == pixels
    if side == 756:
        assert (kv["patch_tokens"], kv["merged_tokens"]) == (2916, 324)
    assert abs(kv["kv_entries"] - 90) <= 1 or side == 756
    cfg = ModelConfig(vocab_size=10, image_size=756)
    assert (cfg.image_tokens, cfg.kv_entries_per_image) == (324, 81)


def test_model_shapes_and_greedy_generation():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=50, max_text=24, **SIZES["tiny"])
    model = CompactVLM(cfg)
    images = torch.rand(2, 3, cfg.image_size, cfg.image_size)
    assert model.encode_image(images).shape == (2, cfg.image_tokens, cfg.d_model)
    logits = model(images, torch.randint(0, 50, (2, 11)))
    assert logits.shape == (2, 11, 50)
    loss = logits.logsumexp(-1).mean()
    loss.backward()
    assert model.patch.weight.grad is not None and model.blocks[0].attn.wk.grad is not None
    out = model.generate(images, [[1, 5, 6], [1, 7]], eos=2, pad=0, max_new=4)
    assert [len(o) <= 4 + (3 - 2) * i for i, o in enumerate(out)] == [True, True]
    with pytest.raises(ValueError, match="multiple of 42"):
        ModelConfig(vocab_size=10, image_size=100)


def test_indexer_gets_its_gradient_from_its_kl_alone_and_learns():
    """The LM loss never reaches the indexer (top-k, detached input); the KL reaches only the
    indexer; training on the KL brings the indexer's distribution to the attention's."""
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=50, image_size=126, d_model=64, n_layers=2, n_heads=2,
                      topk=3, window=4, max_text=40)  # fmt: skip
    model = CompactVLM(cfg)
    images, tokens = torch.rand(2, 3, 126, 126), torch.randint(0, 50, (2, 30))
    indexer = {id(p) for p in model.indexer_parameters()}
    main = [p for p in model.parameters() if id(p) not in indexer]
    logits, kl = model(images, tokens, indexer_loss=True)
    assert torch.equal(logits, model(images, tokens))  # the loss changes nothing it computes
    logits.logsumexp(-1).mean().backward(retain_graph=True)
    assert all(p.grad is None for p in model.indexer_parameters())
    assert all(p.grad is not None for p in main)
    model.zero_grad(set_to_none=True)
    kl.backward()
    assert all(p.grad is None for p in main)
    assert sum(float(p.grad.abs().sum()) for p in model.indexer_parameters()) > 0
    opt = torch.optim.Adam(model.indexer_parameters(), lr=3e-3)
    first = float(kl)
    for _ in range(60):
        _, kl = model(images, tokens, indexer_loss=True)
        opt.zero_grad()
        kl.backward()
        opt.step()
    assert float(kl) < 0.5 * first
