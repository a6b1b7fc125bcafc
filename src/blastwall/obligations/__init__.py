"""Obligations: regulatory and contractual notification clocks, raised as candidates from an
incident's facts and systems, decided by legal, tracked through their submissions."""
