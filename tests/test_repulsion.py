"""The ZBL pair repulsion of conservative models (escn_ase.nn.repulsion), in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.data import covalent_radii

from escn_ase import ESCN, ESCNCalculator, ESCNConfig, save_checkpoint
from escn_ase.nn.repulsion import SWITCH_START, ZBLRepulsion, smooth_switch, zbl_energy


def _zbl_by_hand(r: float, z1: int, z2: int) -> float:
    """The ZBL formula written out independently (eV, A)."""
    a = 0.8854 * 0.529177 / (z1**0.23 + z2**0.23)  # 0.8854 a0: the universal screening length
    x = r / a
    phi = (0.1818 * math.exp(-3.2 * x) + 0.5099 * math.exp(-0.9423 * x)
           + 0.2802 * math.exp(-0.4029 * x) + 0.02817 * math.exp(-0.2016 * x))
    return 14.399645 * z1 * z2 / r * phi


@pytest.mark.parametrize("z1,z2", [(1, 78), (1, 29), (29, 29), (7, 28), (8, 8)])
@pytest.mark.parametrize("r", [0.3, 0.8, 1.2, 2.0])
def test_zbl_energy_matches_the_published_formula(z1, z2, r):
    ours = zbl_energy(torch.tensor([r], dtype=torch.float64), torch.tensor([z1]), torch.tensor([z2]))
    assert float(ours) == pytest.approx(_zbl_by_hand(r, z1, z2), rel=2e-3)


def _pair(module: ZBLRepulsion, z1: int, z2: int, r: torch.Tensor) -> torch.Tensor:
    vectors = torch.stack([torch.stack([r, 0 * r, 0 * r]), torch.stack([-r, 0 * r, 0 * r])])
    return module(torch.tensor([z1, z2]), torch.tensor([[1, 0], [0, 1]]), vectors).sum()


def test_pair_energy_is_zbl_inside_and_zero_outside_the_switch():
    module = ZBLRepulsion(90, cutoff=6.0)
    reach = covalent_radii[1] + covalent_radii[78]
    for r, factor in [(0.4 * reach, 1.0), (SWITCH_START * reach, 1.0), (reach, 0.0), (1.3 * reach, 0.0)]:
        r_t = torch.tensor(r, dtype=torch.float64)
        expected = factor * float(zbl_energy(r_t[None], torch.tensor([1]), torch.tensor([78])))
        assert float(_pair(module, 1, 78, r_t)) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("fraction", [SWITCH_START, 1.0])
def test_switch_ends_have_continuous_energy_force_and_curvature(fraction):
    """Value, first and second derivative match on both sides of each end of the switch."""
    module = ZBLRepulsion(90, cutoff=6.0)
    reach = covalent_radii[7] + covalent_radii[28]
    h = 1e-6

    def derivatives(r0: float) -> tuple[float, float, float]:
        r = torch.tensor(r0, dtype=torch.float64, requires_grad=True)
        energy = _pair(module, 7, 28, r)
        if not energy.requires_grad:  # beyond the reach: no pair in the sum
            return float(energy), 0.0, 0.0
        (first,) = torch.autograd.grad(energy, r, create_graph=True)
        (second,) = torch.autograd.grad(first, r)
        return float(energy.detach()), float(first.detach()), float(second)

    below = derivatives(fraction * reach - h)
    above = derivatives(fraction * reach + h)
    assert abs(below[0] - above[0]) <= 3 * h * (abs(below[1]) + 1.0)
    assert abs(below[1] - above[1]) <= 3 * h * (abs(below[2]) + 1.0)
    assert abs(below[2] - above[2]) <= 1e-3 * (abs(below[2]) + 1.0)  # a C1-only switch jumps by O(1) here


def test_smooth_switch_is_monotone_between_one_and_zero():
    t = torch.linspace(-0.5, 1.5, 2001, dtype=torch.float64)
    s = smooth_switch(t)
    assert float(s[0]) == 1.0 and float(s[-1]) == 0.0
    assert bool((s[1:] <= s[:-1] + 1e-15).all())


def test_reach_never_passes_the_cutoff():
    """Cs-Cs covalent radii add to 4.88 A: with a 3 A cutoff the pair term must be zero at 3 A."""
    module = ZBLRepulsion(90, cutoff=3.0)
    r = torch.tensor(3.0 - 1e-9, dtype=torch.float64)
    assert abs(float(_pair(module, 55, 55, r))) < 1e-12


def _model_pair(tmp_path, pair_repulsion: str) -> ESCNCalculator:
    torch.manual_seed(3)
    config = ESCNConfig(num_layers=1, lmax=2, mmax=1, sphere_channels=8, hidden_channels=8, edge_channels=8,
                        cutoff=4.0, max_neighbors=None, distance_resolution=0.2, forces="conservative",
                        smooth_cutoff=True, activation="gate", pair_repulsion=pair_repulsion)
    path = tmp_path / f"{pair_repulsion}.pt"
    save_checkpoint(path, ESCN(config), elements=[1, 29])
    return ESCNCalculator(path, device="cpu", dtype="float64")


def test_model_energy_is_network_plus_pair_sum(tmp_path):
    """Same weights with and without the term: the difference is the ZBL sum over pairs."""
    with_zbl, without = _model_pair(tmp_path, "zbl"), _model_pair(tmp_path, "none")
    atoms = Atoms("CuHCu", positions=[[0, 0, 0], [1.0, 0.3, 0], [2.3, 0, 0.2]], cell=[8, 8, 8], pbc=True)
    energies = []
    for calc in (with_zbl, without):
        atoms.calc = calc
        energies.append(atoms.get_potential_energy())
    module = ZBLRepulsion(90, cutoff=4.0)
    expected = 0.0
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        r = torch.tensor(atoms.get_distance(i, j), dtype=torch.float64)
        expected += float(_pair(module, int(atoms.numbers[i]), int(atoms.numbers[j]), r))
    assert expected > 1.0  # the H-Cu pairs are inside the switch: the test sees the term
    assert energies[0] - energies[1] == pytest.approx(expected, abs=1e-9)


def test_forces_with_repulsion_match_central_differences(tmp_path):
    calc = _model_pair(tmp_path, "zbl")
    atoms = Atoms("CuHCu", positions=[[0, 0, 0], [1.1, 0.35, 0.1], [2.2, 0.1, 0.3]], cell=[8, 8, 8], pbc=True)
    atoms.calc = calc
    forces = atoms.get_forces()
    step = 1e-4
    numeric = np.zeros_like(forces)
    for i in range(len(atoms)):
        for k in range(3):
            energies = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[i, k] += sign * step
                moved.calc = calc
                energies.append(moved.get_potential_energy())
            numeric[i, k] = -(energies[0] - energies[1]) / (2 * step)
    np.testing.assert_allclose(forces, numeric, atol=1e-5)


def test_metal_pairs_variant_moves_the_non_metal_switch_inwards(tmp_path):
    """zbl_metal: the energy difference to the plain network is the ZBL sum over the pairs with a
    metal atom; the H-H pair at 0.37 A (inside the full switch, outside the non-metal one, which
    ends at half the radius sum, 0.31 A) contributes nothing."""
    metal_only, without = _model_pair(tmp_path, "zbl_metal"), _model_pair(tmp_path, "none")
    atoms = Atoms("CuHH", positions=[[0, 0, 0], [1.0, 0.3, 0], [1.3, 0.5, 0.1]], cell=[8, 8, 8], pbc=True)
    energies = []
    for calc in (metal_only, without):
        atoms.calc = calc
        energies.append(atoms.get_potential_energy())
    module = ZBLRepulsion(90, cutoff=4.0)
    metal_pairs = sum(float(_pair(module, 29, 1, torch.tensor(atoms.get_distance(0, j), dtype=torch.float64)))
                      for j in (1, 2))
    hydrogen_pair = float(_pair(module, 1, 1, torch.tensor(atoms.get_distance(1, 2), dtype=torch.float64)))
    assert metal_pairs > 1.0 and hydrogen_pair > 1.0  # both kinds of pair are inside their switch
    assert energies[0] - energies[1] == pytest.approx(metal_pairs, abs=1e-9)


@pytest.mark.parametrize("z1,z2", [(6, 8), (1, 8), (1, 1), (7, 7)])
def test_non_metal_pairs_repel_only_inside_half_their_radius_sum(z1, z2):
    """Two non-metals under pairs="metal": full ZBL below a quarter of the radius sum, the C2 switch up
    to half of it, nothing beyond, so every bond length of the training data (>= 0.59 of the sum)
    sees no term."""
    metal_pairs = ZBLRepulsion(90, cutoff=5.0, pairs="metal")
    total = covalent_radii[z1] + covalent_radii[z2]
    for fraction in (0.15, 0.25, 0.3, 0.4, 0.49, 0.5, 0.59, 0.8):
        r = torch.tensor(fraction * total, dtype=torch.float64)
        t = torch.tensor((fraction / 0.5 - SWITCH_START) / (1.0 - SWITCH_START), dtype=torch.float64)
        expected = float(zbl_energy(r[None], torch.tensor([z1]), torch.tensor([z2])) * smooth_switch(t))
        assert float(_pair(metal_pairs, z1, z2, r)) == pytest.approx(expected, abs=1e-12), fraction
        if fraction >= 0.5:
            assert float(_pair(metal_pairs, z1, z2, r)) == 0.0
    assert float(_pair(metal_pairs, z1, z2, torch.tensor(0.2 * total, dtype=torch.float64))) > 5.0


def test_non_metal_table_classifies_adsorbate_and_metal_elements():
    module = ZBLRepulsion(90, cutoff=4.0, pairs="metal")
    assert not module.is_metal[[1, 6, 7, 8, 16]].any()
    assert module.is_metal[[13, 28, 29, 46, 47, 78, 79]].all()
    with pytest.raises(ValueError, match="pairs must be one of"):
        ZBLRepulsion(90, cutoff=4.0, pairs="light")


def test_close_pair_repels_in_a_random_model(tmp_path):
    """At 0.5 A the repulsion dominates whatever the untrained network does."""
    atoms = Atoms("CuH", positions=[[0, 0, 0], [0.5, 0, 0]], cell=[8, 8, 8], pbc=True)
    atoms.calc = _model_pair(tmp_path, "zbl")
    assert atoms.get_forces()[1, 0] > 10.0


def test_config_refuses_repulsion_for_direct_models_and_unknown_values():
    with pytest.raises(ValueError, match="pair_repulsion: 'zbl' is for conservative models"):
        ESCNConfig(pair_repulsion="zbl")
    with pytest.raises(ValueError, match="pair_repulsion: 'zbl_metal' is for conservative models"):
        ESCNConfig(pair_repulsion="zbl_metal")
    with pytest.raises(ValueError, match="pair_repulsion: must be 'none', 'zbl' or 'zbl_metal'"):
        ESCNConfig(forces="conservative", pair_repulsion="lj")


def test_checkpoint_keeps_the_setting_and_old_checkpoints_mean_none(tmp_path):
    calc = _model_pair(tmp_path, "zbl")
    assert calc.model.config.pair_repulsion == "zbl"
    values = calc.model.config.to_dict()
    values.pop("pair_repulsion")
    assert ESCNConfig.from_dict(values).pair_repulsion == "none"


def test_reach_fraction_moves_the_full_switch_and_keeps_the_non_metal_one():
    """repulsion_reach 0.8: the Pt-O switch ends at 0.8 of the radius sum (and starts at 0.4); the
    non-metal switch of zbl_metal still ends at half the sum."""
    shorter = ZBLRepulsion(90, cutoff=5.0, pairs="metal", reach_fraction=0.8)
    total = covalent_radii[78] + covalent_radii[8]
    for fraction, factor in [(0.35, 1.0), (0.8, 0.0), (0.9, 0.0)]:
        r = torch.tensor(fraction * total, dtype=torch.float64)
        expected = factor * float(zbl_energy(r[None], torch.tensor([78]), torch.tensor([8])))
        assert float(_pair(shorter, 78, 8, r)) == pytest.approx(expected, abs=1e-12)
    r = torch.tensor(0.6 * total, dtype=torch.float64)  # inside the switch: between 0 and full ZBL
    full = float(zbl_energy(r[None], torch.tensor([78]), torch.tensor([8])))
    assert 0.0 < float(_pair(shorter, 78, 8, r)) < full
    default = ZBLRepulsion(90, cutoff=5.0, pairs="metal")
    oxygen_pair = covalent_radii[8] * 2
    for fraction in (0.3, 0.45):
        r = torch.tensor(fraction * oxygen_pair, dtype=torch.float64)
        assert float(_pair(shorter, 8, 8, r)) == float(_pair(default, 8, 8, r))


def test_config_checks_the_reach_and_old_checkpoints_mean_the_full_sum():
    for bad in (0.0, -1.0, 2.5, "1", True):
        with pytest.raises(ValueError, match="repulsion_reach: a fraction of the covalent-radius sum"):
            ESCNConfig(forces="conservative", pair_repulsion="zbl_metal", repulsion_reach=bad)
    values = ESCNConfig(forces="conservative", pair_repulsion="zbl_metal").to_dict()
    values.pop("repulsion_reach")
    assert ESCNConfig.from_dict(values).repulsion_reach == 1.0
