"""`tierline.extract`: document text + schema → validated JSON (see the quality issue)."""
