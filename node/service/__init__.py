"""The peer node as a long-running OS process (``medmesh node ...``).

:mod:`~node.service.config` reads and checks a node's TOML file; :mod:`~node.service.runner`
drives rounds from the chain's schedule (:mod:`~node.service.schedule`), keeps peers dialled
(:mod:`~node.service.liveness`), catches up on missed aggregates (:mod:`~node.service.modelsync`),
persists model and round atomically (:mod:`~node.service.state`) and logs one event per line
(:mod:`~node.service.events`); :mod:`~node.service.sources` loads the hospital's training data;
:mod:`~node.service.cli` holds the ``medmesh node`` commands and :mod:`~node.service.localnet`
starts a consortium of such processes for tests and benchmarks. The round pipeline itself is
:class:`node.peer.pipeline.HospitalPeer`.
"""
