-- A resource whose patient reference points into another input (a `urn:uuid:` or conditional
-- reference) is stored without a patient. `adopts` marks such a reference while it waits; once
-- it resolves to a Patient, the resource joins that patient's compartment (`store/adopt.rs`)
-- and the mark is cleared, so the partial index holds only what is left to adopt.
ALTER TABLE refs ADD COLUMN adopts BIGINT NOT NULL DEFAULT 0;
CREATE INDEX refs_adopting ON refs (src_type, src_id) WHERE adopts = 1 AND resolved = 1;
-- Resources stored before: their next ingest adopts them.
UPDATE refs SET adopts = 1
 WHERE kind IN ('urn', 'conditional')
   AND path IN ('subject', 'patient', 'beneficiary', 'target')
   AND (kind = 'urn' OR target_type = 'Patient')
   AND EXISTS (SELECT 1 FROM resources r
                WHERE r.type = refs.src_type AND r.id = refs.src_id AND r.patient_id IS NULL);
