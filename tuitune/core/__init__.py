"""The domain: recipes, data, models, hardware, memory, training. Never imports textual."""
