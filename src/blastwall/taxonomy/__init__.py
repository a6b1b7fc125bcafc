"""AI incident taxonomies as data: MITRE ATLAS, OWASP Top 10 for LLM and for Agentic
Applications, NIST AI 600-1, and the archetypes of this product."""

from blastwall.taxonomy.tables import FRAMEWORKS, Entry, Taxonomy, taxonomy

__all__ = ["FRAMEWORKS", "Entry", "Taxonomy", "taxonomy"]
