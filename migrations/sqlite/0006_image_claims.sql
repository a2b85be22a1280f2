-- Who is transcribing an image, and since when (seconds since the epoch): processes sharing the
-- database claim images before transcribing them, so none is transcribed twice, and a claim
-- left by a process that died lapses (src/store/images.rs).
ALTER TABLE images ADD COLUMN claimed_by TEXT;
ALTER TABLE images ADD COLUMN claimed_at INTEGER;
