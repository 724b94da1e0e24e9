"""Machine-learning helpers for the Kapacitor UDFs.

Kept import-light on purpose: UDF processes start per task, so numpy, scikit-learn and joblib
are imported inside the functions that need them, never when a module is imported.
"""
