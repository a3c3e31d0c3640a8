"""seq-JEPA parts: encoders, action embeddings, aggregators, predictors, targets, and their assembly."""
