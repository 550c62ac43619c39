"""Make the tiny ONNX fixtures of tests/test_model.py (committed in tests/data).

Run from the repo root with the train extra installed (it needs the ``onnx`` package):
``python tests/data/make_onnx_fixtures.py``. Each model maps X [N, width] to
``probabilities`` = sigmoid(X[:, 0:2]); only the width and the metadata differ.
"""
from __future__ import annotations

import sys

import onnx
from onnx import TensorProto, helper

sys.path.insert(0, '.')
from edge.scoring.features import N_FEATURES

def make(width: int, meta: dict[str, str], path: str) -> None:
    X = helper.make_tensor_value_info('X', TensorProto.FLOAT, [None, width])
    P = helper.make_tensor_value_info('probabilities', TensorProto.FLOAT, [None, 2])
    starts = helper.make_tensor('starts', TensorProto.INT64, [1], [0])
    ends = helper.make_tensor('ends', TensorProto.INT64, [1], [2])
    axes = helper.make_tensor('axes', TensorProto.INT64, [1], [1])
    nodes = [helper.make_node('Slice', ['X', 'starts', 'ends', 'axes'], ['s']),
             helper.make_node('Sigmoid', ['s'], ['probabilities'])]
    g = helper.make_graph(nodes, 'fixture', [X], [P], initializer=[starts, ends, axes])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)])
    m.ir_version = 8
    for k, v in meta.items():
        p = m.metadata_props.add(); p.key = k; p.value = v
    onnx.checker.check_model(m)
    open(path, 'wb').write(m.SerializeToString())

make(10, {'threshold': '0.5'}, 'tests/data/wrong_width.onnx')
make(N_FEATURES, {}, 'tests/data/no_threshold.onnx')
make(N_FEATURES, {'threshold': '0.5', 'feature_layout_sha256': '0' * 64}, 'tests/data/other_layout.onnx')
make(N_FEATURES, {'threshold': '0.5'}, 'tests/data/sigmoid_first_column.onnx')
