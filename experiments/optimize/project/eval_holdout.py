"""The holdout figure for one seed: the seed's trained model on the held-out digits (harness-only)."""
import json
import os
import pickle
import sys

import numpy as np
from sklearn.datasets import load_digits

seed = int(sys.argv[1])
x, y = load_digits(return_X_y=True)
index = np.load("holdout/index.npy")
model = pickle.load(open(f"runs/opt-s{seed}/model.pkl", "rb"))
os.makedirs("out", exist_ok=True)
json.dump({"acc": model.score(x[index] / 16.0, y[index])}, open(f"out/h-s{seed}.json", "w"))
