//! Which patient's compartment a resource belongs to: the patient every search, context and
//! citation of that resource is confined to.
//!
//! A resource names its patient by a reference at one of `PATIENT_PATHS`. Most references say
//! who they point at (`Patient/123`), so the patient is known when the input is prepared. A
//! `urn:uuid:` or conditional reference (`Patient?identifier=...`) into another input does not:
//! the resource is stored without a patient, its reference is marked (`adopts_patient`), and
//! it joins the patient's compartment when the store resolves that reference
//! (`store/adopt.rs`), whichever input arrives first.

use super::reference::ResourceRef;
use super::resolve::{RefKind, RefLink};

/// Elements whose reference names the resource's patient, most telling first.
pub const PATIENT_PATHS: [&str; 4] = ["subject", "patient", "beneficiary", "target"];

/// The patient whose compartment holds this resource, as far as its own input tells.
pub fn patient_of(rref: &ResourceRef, links: &[RefLink]) -> Option<String> {
    if rref.rtype() == "Patient" {
        return Some(rref.id().to_owned());
    }
    PATIENT_PATHS
        .iter()
        .flat_map(|p| links.iter().filter(move |l| l.path == *p))
        .filter_map(|l| l.target.as_ref())
        .find(|t| t.rtype() == "Patient")
        .map(|t| t.id().to_owned())
}

/// Whether `link`, left pending by its input, may give a resource that has no patient its
/// patient once the store resolves it: an unresolved `urn:uuid:` (its target's type is not
/// known yet) or conditional reference to a Patient, at one of `PATIENT_PATHS`.
pub fn adopts_patient(patient: Option<&str>, link: &RefLink) -> bool {
    let may_be_patient = match link.kind {
        RefKind::Urn => true,
        RefKind::Conditional => link.conditional.as_ref().is_some_and(|c| c.rtype == "Patient"),
        RefKind::Literal | RefKind::Contained | RefKind::Unparseable => false,
    };
    patient.is_none() && !link.resolved && may_be_patient && PATIENT_PATHS.contains(&link.path.as_str())
}

/// Rank of a patient path (lower is more telling), for choosing among several references.
pub fn path_rank(path: &str) -> Option<usize> {
    PATIENT_PATHS.iter().position(|p| *p == path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::resolve::Conditional;

    fn link(path: &str, kind: RefKind, conditional_type: Option<&str>) -> RefLink {
        RefLink {
            path: path.into(),
            raw: "x".into(),
            kind,
            target: None,
            resolved: false,
            conditional: conditional_type.map(|t| Conditional {
                rtype: t.into(),
                system: None,
                value: "1".into(),
            }),
        }
    }

    #[test]
    fn only_pending_urn_or_patient_conditional_references_at_patient_paths_adopt() {
        assert!(adopts_patient(None, &link("subject", RefKind::Urn, None)));
        assert!(adopts_patient(None, &link("patient", RefKind::Conditional, Some("Patient"))));
        assert!(!adopts_patient(None, &link("performer", RefKind::Urn, None)), "not a patient path");
        assert!(!adopts_patient(None, &link("subject", RefKind::Conditional, Some("Group"))));
        assert!(!adopts_patient(None, &link("subject", RefKind::Literal, None)), "names its type");
        assert!(!adopts_patient(Some("p1"), &link("subject", RefKind::Urn, None)), "has a patient");
        let resolved = RefLink { resolved: true, ..link("subject", RefKind::Urn, None) };
        assert!(!adopts_patient(None, &resolved));
    }
}
