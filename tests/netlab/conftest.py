"""The network lab's fixture: ``make_lab(hospitals, rtt_ms=..., link=...)`` builds a
:class:`~netlab.lab.Lab` that is torn down when the requesting scope ends, even on failure
(and a killed earlier run's namespaces are swept when the next lab starts)."""

from __future__ import annotations

import os

import pytest

from netlab.lab import Lab
from netlab.netns import netns_supported


@pytest.fixture(scope="module")
def make_lab(request):
    why = netns_supported()
    if why is not None:
        if os.environ.get("CI"):  # CI has namespaces: a skip there would hide a broken set-up
            pytest.fail(f"network lab: {why}")
        pytest.skip(f"network lab: {why}")
    labs: list[Lab] = []

    def make(hospitals: int, **kwargs) -> Lab:
        lab = Lab(hospitals, **kwargs)
        labs.append(lab)
        request.addfinalizer(lab.down)
        lab.up()
        return lab

    return make
