"""Makes torch_lstm.onnx (the PyTorch LSTM export of docs/neural.md, seed 0) and torch_lstm_y.npy, torch's own
output for the test signal (2 lanes, rng 3). Run in tests/data with the train extra: python make_torch_lstm.py"""

import torch

torch.manual_seed(0)


class Amp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(1, 8, num_layers=2)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x, h0, c0):  # x [batch, T]; h0, c0 [2, batch, 8]
        y, (hn, cn) = self.lstm(x.transpose(0, 1).unsqueeze(2), (h0, c0))
        return self.head(y).squeeze(2).transpose(0, 1), hn, cn


x, h = torch.zeros(1, 128), torch.zeros(2, 1, 8)
model = Amp().eval()
torch.onnx.export(
    model,
    (x, h, h),
    "torch_lstm.onnx",
    input_names=["input", "h0", "c0"],
    output_names=["output", "hn", "cn"],
    opset_version=17,
    dynamo=False,
    dynamic_axes={
        "input": {0: "batch", 1: "T"},
        "output": {0: "batch", 1: "T"},
        "h0": {1: "batch"},
        "c0": {1: "batch"},
        "hn": {1: "batch"},
        "cn": {1: "batch"},
    },
)
# the torch reference over a whole signal, 2 lanes
import numpy as np

sig = torch.tensor(np.random.default_rng(3).uniform(-0.8, 0.8, (2, 1000)).astype(np.float32))
with torch.no_grad():
    y, _, _ = model(sig, torch.zeros(2, 2, 8), torch.zeros(2, 2, 8))
np.save("torch_lstm_y.npy", y.numpy())  # what torch itself gives for that signal
