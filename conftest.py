import os

# Lets sklearn's check_array_api_input run (on NumPy inputs) instead of
# skipping; it must be set before scipy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
