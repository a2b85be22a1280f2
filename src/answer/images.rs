//! Images at answer time: when the evidence includes a report held as an image and the model
//! can see images, the image itself goes with the prompt (each costs `IMAGE_TOKENS` of the
//! budget, set aside before the context is assembled), and the prompt says which citation tag
//! each image belongs to.

use super::pipeline::Prepared;
use super::AnswerError;
use crate::llm::ImageInput;
use crate::store::Store;

/// Soft tokens one image takes in MedGemma 1.5's prompt (896 x 896 pixels, pooled to 16 x 16).
pub const IMAGE_TOKENS: usize = 256;

/// Resource types whose attachments can be report images.
const IMAGE_OWNERS: [&str; 3] = ["DiagnosticReport", "DocumentReference", "Media"];

/// Attaches up to `prep`'s image slots: the transcribed images of the context's items, in the
/// order the context chose them (most relevant first).
pub async fn attach_images(prep: &mut Prepared, store: &Store) -> Result<(), AnswerError> {
    let mut items: Vec<&crate::retrieval::ContextItem> = prep.ctx.items.iter().collect();
    items.sort_by_key(|i| i.rank);
    for item in items {
        if prep.images.len() >= prep.image_slots {
            break;
        }
        let Some((rtype, id)) = item.rref.split_once('/') else { continue };
        if !IMAGE_OWNERS.contains(&rtype) || prep.images.iter().any(|(r, _)| *r == item.rref) {
            continue;
        }
        for png in store.transcribed_images(rtype, id).await.map_err(AnswerError::Store)? {
            if prep.images.len() < prep.image_slots {
                prep.images.push((item.rref.clone(), ImageInput { bytes: png, mime: "image/png".into() }));
            }
        }
    }
    Ok(())
}

/// The line telling the model which tag each attached image belongs to.
pub fn caption(prep: &Prepared) -> Option<String> {
    if prep.images.is_empty() {
        return None;
    }
    let tags: Vec<String> = prep
        .images
        .iter()
        .enumerate()
        .map(|(i, (r, _))| {
            let tag = prep.tagged.tag_of(r).map_or_else(|| r.clone(), |n| format!("[{n}]"));
            format!("image {} is the report {tag}", i + 1)
        })
        .collect();
    Some(format!("Attached images: {}.", tags.join("; ")))
}
