"""Video stages for real footage: shots, face tracks, head pose, segments and the review page.

Each stage is a small module of plain functions; ``prep.crop`` conducts them.
"""
