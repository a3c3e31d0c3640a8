"""Train a small MLP on scikit-learn's digits for one seed; write the validation accuracy.

The seed picks the train/validation split and the initialisation; the holdout images (holdout/) are never
read here. Usage: python train.py SEED (the recipe is config.json)."""
import json
import os
import sys

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

seed = int(sys.argv[1])
cfg = json.load(open("config.json"))
x, y = load_digits(return_X_y=True)
x = x / 16.0
keep = np.load("data/visible_index.npy")  # the images not held out
xtr, xva, ytr, yva = train_test_split(x[keep], y[keep], test_size=0.3, random_state=seed)
model = MLPClassifier(hidden_layer_sizes=(cfg["width"],), learning_rate_init=cfg["lr"], alpha=cfg["weight_decay"],
                      max_iter=cfg["epochs"], random_state=seed)
model.fit(xtr, ytr)
os.makedirs(f"runs/opt-s{seed}", exist_ok=True)
json.dump({"val_acc": model.score(xva, yva)}, open(f"runs/opt-s{seed}/results.json", "w"))
import pickle
pickle.dump(model, open(f"runs/opt-s{seed}/model.pkl", "wb"))
