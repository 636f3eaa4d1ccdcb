"""Small modal screens: yes/no, error with details, text prompt, recipe picker. Each returns its answer
through `push_screen(dialog, callback)` or `await push_screen_wait(dialog)`."""
