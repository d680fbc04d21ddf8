"""CKKS on Microsoft SEAL: parameters, the SEAL glue, the byte format, the worker pool, and the
scheme the ckks mode runs.
"""
