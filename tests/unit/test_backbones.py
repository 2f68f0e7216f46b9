"""Backbones by name: ResNet block/width/stem options, ViT-Small variants, config dispatch, names, checkpoints."""

from __future__ import annotations

import itertools

import pytest
import torch
from torchvision import models as tv_models

from siamcollapse.config import SCHEMA_PATH, load_yaml
from siamcollapse.errors import UserInputError
from siamcollapse.fingerprint import state_fingerprint
from siamcollapse.models.backbones import (
    ARCHS,
    BLOCKS,
    MODEL_KEYS,
    RESNET_ARCHS,
    backbone_from_config,
    build_backbone,
    count_parameters,
    family,
    model_name,
    resnet_block,
)
from siamcollapse.training.checkpoint import load_backbone, save_backbone, verified_backbone_meta

TINY_VIT = {"arch": "vit_small", "image_size": 32, "patch_size": 16, "depth": 2, "heads": 6}


def seeded(build, *args, **kwargs):
    """Build with a fixed seed, so two builds of the same network have identical weights."""
    torch.manual_seed(0)
    return build(*args, **kwargs)


def last_bn_weights(net: torch.nn.Module) -> list[torch.Tensor]:
    """The weight of the last BatchNorm of every residual block (what zero_init_residual zeroes)."""
    blocks = [m for m in net.modules() if isinstance(m, (tv_models.resnet.BasicBlock, tv_models.resnet.Bottleneck))]
    return [(b.bn3 if isinstance(b, tv_models.resnet.Bottleneck) else b.bn2).weight for b in blocks]


@pytest.fixture
def structure_only():
    """Networks built on the meta device: their shapes and parameter counts, without initialising
    weights (seconds per full-width network on a CPU)."""
    with torch.device("meta"):
        yield


# --- ResNets ------------------------------------------------------------------------------


@pytest.mark.parametrize("arch,block,stem,size", [
    *[(arch, block, "imagenet", 32) for arch, block in itertools.product(RESNET_ARCHS, BLOCKS)],
    *[("resnet18", block, "small", 16) for block in BLOCKS],
])
def test_resnet_output_size_is_feature_dim(arch, block, stem, size):
    net = build_backbone(arch, 8, stem, block).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, size, size))
    assert out.shape == (2, net.feature_dim)
    assert net.feature_dim == 8 * 8 * resnet_block(arch, block).expansion


@pytest.mark.parametrize("arch", RESNET_ARCHS)
@pytest.mark.usefixtures("structure_only")
def test_default_resnets_match_torchvision_without_fc(arch):
    reference = getattr(tv_models, arch)()
    expected = count_parameters(reference) - count_parameters(reference.fc)
    assert count_parameters(build_backbone(arch)) == expected
    assert build_backbone(arch).feature_dim == reference.fc.in_features


@pytest.mark.parametrize("arch,own", [("resnet18", "basic"), ("resnet34", "basic"), ("resnet50", "bottleneck")])
def test_default_block_is_the_architectures_own(arch, own):
    default = seeded(build_backbone, arch, 8)
    assert state_fingerprint(seeded(build_backbone, arch, 8, "imagenet", own)) == state_fingerprint(default)
    other = "bottleneck" if own == "basic" else "basic"
    assert count_parameters(build_backbone(arch, 8, "imagenet", other)) != count_parameters(default)


@pytest.mark.parametrize("width", [64, 96, 128])
@pytest.mark.usefixtures("structure_only")
def test_bottleneck_resnet18_is_four_times_wider(width):
    net = build_backbone("resnet18", width, block="bottleneck")
    assert [len(stage) for stage in (net.layer1, net.layer2, net.layer3, net.layer4)] == [2, 2, 2, 2]
    assert all(isinstance(b, tv_models.resnet.Bottleneck) for b in net.layer4)
    assert net.feature_dim == net.layer4[-1].conv3.out_channels == 4 * build_backbone("resnet18", width).feature_dim
    if width == 64:  # the paper's 2048-d ResNet-18, the same size as ResNet-50's output
        assert net.feature_dim == build_backbone("resnet50").feature_dim


def test_basic_resnet50_is_the_authors_5_6_9_4_network_without_bottlenecks():
    net = build_backbone("resnet50", 8, block="basic")
    assert [len(stage) for stage in (net.layer1, net.layer2, net.layer3, net.layer4)] == [5, 6, 9, 4]
    assert not any(isinstance(m, tv_models.resnet.Bottleneck) for m in net.modules())
    assert net.feature_dim == 8 * 8


def _torchvision_count_without_fc(block, layers, **kwargs) -> int:
    reference = tv_models.resnet.ResNet(block, layers, **kwargs)
    return count_parameters(reference) - count_parameters(reference.fc)


@pytest.mark.parametrize("width_per_group", [64, 96, 128])
@pytest.mark.usefixtures("structure_only")
def test_the_papers_bottleneck_resnet18_widens_only_the_bottleneck(width_per_group):
    net = build_backbone("resnet18", block="bottleneck", width_per_group=width_per_group)
    expected = _torchvision_count_without_fc(tv_models.resnet.Bottleneck, [2, 2, 2, 2],
                                             width_per_group=width_per_group)
    assert count_parameters(net) == expected
    assert net.feature_dim == 2048  # every width keeps ResNet-50's output size
    assert net.layer1[0].conv2.out_channels == width_per_group
    assert 13e6 < count_parameters(build_backbone("resnet18", block="bottleneck")) < 15e6  # the paper's 13.9M


@pytest.mark.usefixtures("structure_only")
def test_the_papers_resnet50_without_bottlenecks_has_torchvisions_basic_block_count():
    net = build_backbone("resnet50", block="basic")
    assert count_parameters(net) == _torchvision_count_without_fc(tv_models.resnet.BasicBlock, [5, 6, 9, 4])
    assert net.feature_dim == 512
    assert 29e6 < count_parameters(net) < 32e6  # the paper's 30.3M, not a 340M 4x-wide network


def test_width_per_group_needs_bottleneck_blocks():
    with pytest.raises(ValueError, match="model.width_per_group"):
        build_backbone("resnet18", width_per_group=96)


def _corner_probe(net: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs for a batch and for the same batch with every pixel outside the top-left 8x8 redrawn."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(8, 3, 32, 32, generator=generator)
    changed = images.clone()
    changed[..., 8:, :] = torch.randn(8, 3, 24, 32, generator=generator)
    changed[..., :8, 8:] = torch.randn(8, 3, 8, 24, generator=generator)
    with torch.no_grad():
        return net(images), net(changed)


@pytest.mark.parametrize("arch,block", [("resnet18", "default"), ("resnet18", "bottleneck"), ("resnet50", "default")])
def test_standard_init_sees_the_whole_image(arch, block):
    net = seeded(build_backbone, arch, 16, "imagenet", block, zero_init_residual=False).eval()
    assert all(float(w.detach().abs().sum()) > 0 for w in last_bn_weights(net))
    before, after = _corner_probe(net)
    assert not torch.allclose(before, after, rtol=0, atol=1e-6)


def test_standard_init_has_no_constant_feature_dimension():
    # The small stem: with the ImageNet stem at 32 px layer 4 is 1 x 1 and, BN being uncalibrated at
    # init, about a tenth of the ReLU outputs are 0 for every image whatever the init of the branches.
    net = seeded(build_backbone, "resnet18", 16, "small", zero_init_residual=False).eval()
    images = torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        features = net(images)
    assert bool((features.std(dim=0) > 0).all())


def test_zero_init_residual_net_sees_only_the_top_left_corner():
    """Why a random-init floor must not use zero_init_residual: its residual branches output 0 and the
    1x1 stride-2 downsample convolutions sample only even positions, so with 32-px inputs the output
    depends on nothing but the top-left corner."""
    before, after = _corner_probe(seeded(build_backbone, "resnet18", 16, zero_init_residual=True).eval())
    torch.testing.assert_close(before, after, rtol=0, atol=1e-6)


def test_backbone_from_config_passes_zero_init_residual():
    standard = backbone_from_config({"arch": "resnet18", "width": 8}, zero_init_residual=False)
    trained = backbone_from_config({"arch": "resnet18", "width": 8})
    assert all(float(w.detach().abs().sum()) > 0 for w in last_bn_weights(standard))
    assert all(float(w.detach().abs().sum()) == 0 for w in last_bn_weights(trained))


@pytest.mark.parametrize("arch,block", [("resnet18", "bottleneck"), ("resnet50", "basic"), ("resnet34", "default")])
def test_resnets_are_zero_init_residual(arch, block):
    weights = last_bn_weights(build_backbone(arch, 8, block=block))
    assert weights and all(float(w.detach().abs().sum()) == 0 for w in weights)


def test_unknown_block_stem_or_arch_is_rejected_by_key():
    with pytest.raises(ValueError, match="model.block"):
        build_backbone("resnet18", 8, block="inverted")
    with pytest.raises(ValueError, match="model.stem"):
        build_backbone("resnet18", 8, stem="tiny")
    with pytest.raises(ValueError, match="model.arch"):
        backbone_from_config({"arch": "resnet101"})
    with pytest.raises(ValueError, match="backbone_from_config"):
        build_backbone("vit_small")


# --- ViT ----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth,heads,patch", [(1, 6, 16), (3, 3, 8), (2, 12, 8)])
def test_vit_honours_depth_heads_and_patch_size(depth, heads, patch):
    net = backbone_from_config({**TINY_VIT, "depth": depth, "heads": heads, "patch_size": patch}).eval()
    assert len(net.encoder.layers) == depth
    assert all(layer.self_attention.num_heads == heads for layer in net.encoder.layers)
    assert net.conv_proj.kernel_size == (patch, patch)
    with torch.no_grad():
        out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, net.feature_dim) and net.feature_dim == net.hidden_dim == 384
    assert net.encoder.layers[0].mlp[0].out_features == 4 * net.feature_dim


def test_vit_output_is_the_normalised_cls_token():
    net = backbone_from_config(TINY_VIT).eval()
    captured = {}
    net.encoder.register_forward_hook(lambda module, args, output: captured.update(tokens=output))
    with torch.no_grad():
        out = net(torch.randn(3, 3, 32, 32))
    assert torch.equal(out, captured["tokens"][:, 0])
    # The encoder ends in a LayerNorm (unit scale, zero shift at init): each output is standardised.
    assert torch.allclose(out.mean(dim=1), torch.zeros(3), atol=1e-4)
    assert torch.allclose(out.std(dim=1, unbiased=False), torch.ones(3), atol=1e-2)


def test_vit_small_defaults_to_the_authors_12_heads():
    net = backbone_from_config({"arch": "vit_small", "image_size": 32, "depth": 1})
    assert all(layer.self_attention.num_heads == 12 for layer in net.encoder.layers)


def test_vit_position_embedding_is_a_fixed_2d_sincos_buffer():
    net = backbone_from_config({**TINY_VIT, "patch_size": 8})  # a 4 x 4 patch grid
    names = {name for name, _ in net.named_parameters()}
    assert not any("pos_embedding" in name for name in names)
    table = net.state_dict()["encoder.pos_embedding"]
    assert table.shape == (1, 1 + 16, 384)
    assert torch.equal(table[0, 0], torch.zeros(384))  # the CLS token gets no position
    quarter = 384 // 4
    k = torch.arange(quarter, dtype=torch.float64)
    for row, col in [(0, 0), (1, 2), (3, 1)]:
        angle_r, angle_c = row / 10000 ** (k / quarter), col / 10000 ** (k / quarter)
        expected = torch.cat([angle_r.sin(), angle_r.cos(), angle_c.sin(), angle_c.cos()]).float()
        torch.testing.assert_close(table[0, 1 + 4 * row + col], expected)
    # learned-embedding-free: torchvision's ViT with the same shape has exactly that table more to train
    reference = tv_models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=6,
                                            hidden_dim=384, mlp_dim=1536)
    expected = count_parameters(reference) - count_parameters(reference.heads) - reference.encoder.pos_embedding.numel()
    assert count_parameters(net) == expected


@pytest.mark.parametrize("freeze", [True, False])
def test_vit_patch_projection_frozen_only_when_asked(freeze):
    torch.manual_seed(0)
    net = backbone_from_config({**TINY_VIT, "freeze_patch_embed": freeze})
    patch_before = net.conv_proj.weight.detach().clone()
    mlp_before = net.encoder.layers[0].mlp[0].weight.detach().clone()
    optimizer = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    out = net(torch.randn(4, 3, 32, 32))
    (out * torch.randn_like(out)).sum().backward()
    optimizer.step()
    assert net.conv_proj.weight.requires_grad is not freeze and net.conv_proj.bias.requires_grad is not freeze
    assert torch.equal(net.conv_proj.weight, patch_before) is freeze
    assert not torch.equal(net.encoder.layers[0].mlp[0].weight, mlp_before)


@pytest.mark.parametrize("change,key", [({"image_size": 30}, "image_size"), ({"heads": 5}, "heads"),
                                        ({"patch_size": 7}, "patch_size")])
def test_vit_bad_shapes_are_rejected_by_key(change, key):
    with pytest.raises(ValueError, match=f"model.{key}"):
        backbone_from_config({**TINY_VIT, **change})


def test_vit_requires_image_size():
    model = {k: v for k, v in TINY_VIT.items() if k != "image_size"}
    with pytest.raises(ValueError, match="model.image_size"):
        backbone_from_config(model)


# --- config dispatch and names ------------------------------------------------------------


def test_model_keys_cover_the_schema_model_section():
    schema = load_yaml(SCHEMA_PATH)["$defs"]["model"]["properties"]
    assert set(schema["arch"]["enum"]) == set(ARCHS)
    assert set(schema["block"]["enum"]) == set(BLOCKS)
    assert set(itertools.chain(*MODEL_KEYS.values())) == set(schema) | {"image_size"}
    assert all("arch" in keys for keys in MODEL_KEYS.values())
    assert {family(arch) for arch in ARCHS} == set(MODEL_KEYS)


def test_backbone_from_config_ignores_the_other_familys_keys():
    resnet = {"arch": "resnet18", "block": "bottleneck", "width": 8, "stem": "small"}
    vit_noise = {"patch_size": 7, "depth": 0, "heads": 5, "freeze_patch_embed": False, "image_size": 30}
    plain = seeded(backbone_from_config, resnet)
    assert state_fingerprint(seeded(backbone_from_config, {**resnet, **vit_noise})) == state_fingerprint(plain)
    resnet_noise = {"block": "inverted", "width": 3, "stem": "tiny"}
    assert state_fingerprint(seeded(backbone_from_config, {**TINY_VIT, **resnet_noise})) == \
        state_fingerprint(seeded(backbone_from_config, TINY_VIT))


def test_backbone_from_config_fills_missing_keys_with_schema_defaults():
    defaults = load_yaml(SCHEMA_PATH)["$defs"]["model"]["properties"]
    net = backbone_from_config({"arch": "resnet18"})
    assert count_parameters(net) == count_parameters(build_backbone("resnet18", defaults["width"]["default"],
                                                                    defaults["stem"]["default"]))
    vit = backbone_from_config({"arch": "vit_small", "image_size": 32})
    assert len(vit.encoder.layers) == defaults["depth"]["default"]
    assert not vit.conv_proj.weight.requires_grad  # freeze_patch_embed defaults to true


@pytest.mark.parametrize("model,name", [
    ({"arch": "resnet18"}, "resnet18"),
    ({"arch": "resnet18", "block": "default", "width": 64, "stem": "small", "depth": 3}, "resnet18"),
    ({"arch": "resnet18", "block": "bottleneck", "width": 96}, "resnet18-bottleneck-w96"),
    ({"arch": "resnet18", "block": "bottleneck", "width_per_group": 96}, "resnet18-bottleneck-g96"),
    ({"arch": "resnet50", "block": "basic", "width": 256}, "resnet50-basic-w256"),
    ({"arch": "resnet34", "width": 16}, "resnet34-w16"),
    ({"arch": "vit_small", "image_size": 224}, "vit_small"),
    ({"arch": "vit_small", "depth": 6, "heads": 3, "width": 16}, "vit_small-d6-h3"),
    ({"arch": "vit_small", "heads": 12}, "vit_small"),
    ({"arch": "vit_small", "depth": 3, "patch_size": 8}, "vit_small-d3-p8"),
])
def test_model_name(model, name):
    assert model_name(model) == name


@pytest.mark.parametrize("arch", ARCHS)
def test_model_name_of_missing_keys_agrees_with_the_schema_defaults(arch):
    defaults = {key: spec["default"] for key, spec in load_yaml(SCHEMA_PATH)["$defs"]["model"]["properties"].items()}
    assert model_name({"arch": arch}) == model_name({**defaults, "arch": arch})


# --- checkpoints --------------------------------------------------------------------------


@pytest.mark.parametrize("model", [TINY_VIT, {"arch": "resnet18", "block": "bottleneck", "width": 8, "stem": "small"}])
def test_checkpoint_round_trip(tmp_path, model):
    net = backbone_from_config(model).eval()
    with torch.no_grad():  # move BatchNorm statistics away from their init so the round trip must carry them
        net.train()(torch.randn(4, 3, 32, 32))
    net.eval()
    save_backbone(tmp_path / "backbone.pt", net, model, {}, epochs_trained=1)
    loaded, meta = load_backbone(tmp_path / "backbone.pt")
    assert state_fingerprint(loaded) == state_fingerprint(net) == meta["fingerprint"]
    assert loaded.feature_dim == net.feature_dim == meta["feature_dim"]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    assert [p.requires_grad for p in loaded.parameters()] == [p.requires_grad for p in net.parameters()]


def test_a_checkpoint_s_weights_are_verified_against_its_fingerprint_without_building_the_network(tmp_path):
    model = {"arch": "resnet18", "width": 8, "stem": "small"}
    net = backbone_from_config(model)
    save_backbone(tmp_path / "backbone.pt", net, model, {}, epochs_trained=1)
    meta = verified_backbone_meta(tmp_path / "backbone.pt")
    assert meta["fingerprint"] == state_fingerprint(net) and "backbone" not in meta
    checkpoint = torch.load(tmp_path / "backbone.pt", weights_only=False)
    next(iter(checkpoint["backbone"].values())).add_(1.0)  # weights that are not the ones fingerprinted
    torch.save(checkpoint, tmp_path / "tampered.pt")
    with pytest.raises(UserInputError, match="tampered.pt.*do not match"):
        verified_backbone_meta(tmp_path / "tampered.pt")
    with pytest.raises(UserInputError, match="checkpoint not found"):
        verified_backbone_meta(tmp_path / "missing.pt")


@pytest.mark.parametrize("arch,width,dim", [("resnet18", 64, 512), ("resnet18", 16, 128), ("resnet50", 16, 512)])
def test_backbone_feature_dim(arch, width, dim):
    net = build_backbone(arch, width)
    assert net.feature_dim == dim
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, dim)


def test_backbones_are_zero_init_residual():
    net = build_backbone("resnet18", 16)
    assert all(float(block.bn2.weight.detach().abs().sum()) == 0 for block in net.layer1)


def test_small_stem_keeps_resolution():
    assert isinstance(build_backbone("resnet18", 8, "small").maxpool, torch.nn.Identity)
