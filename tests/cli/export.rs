//! PyTorch .pth files through the real binary: `fluke export` writes what it read as safetensors, `fluke predict`
//! gives the same probabilities from the .pth (or a Keras .h5) and from its export, `fluke train --init` starts from a
//! .pth, and a pickle that calls code is one error line. Fixtures: tests/fixtures/unet_w16_*.pth
//! (tools/make_pth_fixtures.py, the golden fill at width 16, saved by torch in both containers), keras_w16.h5.

use std::path::{Path, PathBuf};

use crate::common::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn export_writes_every_tensor_of_a_pth_and_predict_agrees_on_both() {
    let d = tempdir();
    let golden = tensor_bits(&fixture("unet_w16.safetensors"));
    let (images, _) = synth(&d.path().join("data"), 3, 5);
    let mut probs_of_pth = None;
    for pth in ["unet_w16_legacy.pth", "unet_w16_wrapped.pth"] {
        let out = d.path().join(format!("{pth}.safetensors"));
        let o = fluke(&["export", "--weights", s(&fixture(pth)), "--out", s(&out)]);
        assert!(o.status.success(), "export {pth}:\n{}", stderr(&o));
        // Through the GPU model and back: the model's own names, every value bit-identical to what torch saved.
        assert_eq!(tensor_bits(&out), golden, "{pth}: the export differs from the golden");

        // predict on the .pth and on its export: the same probabilities, bit for bit.
        let mut probs = Vec::new();
        for (tag, w) in [("pth", fixture(pth)), ("export", out.clone())] {
            let p = d.path().join(format!("pred-{pth}-{tag}"));
            let o = fluke(&["predict", "--weights", s(&w), "--input", s(&images), "--out", s(&p), "--size", "64x32", "--tta", "none", "--save-probs"]);
            assert!(o.status.success(), "predict {tag} of {pth}:\n{}", stderr(&o));
            let npys: Vec<Vec<u8>> = files(&p).iter().filter(|f| f.extension().is_some_and(|e| e == "npy")).map(|f| std::fs::read(f).unwrap()).collect();
            assert_eq!(npys.len(), 3, "{tag}: one probability map per photo");
            probs.push(npys);
        }
        assert_eq!(probs[0], probs[1], "{pth}: predict on the .pth and on its export differ");
        // The two photos' maps differ (the model is not a constant): the comparison above can fail.
        assert_ne!(probs[0][0], probs[0][1]);
        if let Some(first) = &probs_of_pth {
            assert_eq!(first, &probs[0], "the legacy and the wrapped zip file hold the same weights");
        }
        probs_of_pth = Some(probs.swap_remove(0));
    }
}

#[test]
fn train_init_starts_from_a_pth() {
    let d = tempdir();
    let (images, masks) = synth(&d.path().join("data"), 8, 2);
    let run = d.path().join("run");
    let pth = fixture("unet_w16_legacy.pth");
    let mut args = vec!["train", "--images", s(&images), "--masks", s(&masks), "--out", s(&run), "--init", s(&pth)];
    args.extend(TINY);
    args.extend(["--epochs", "1", "--max-steps", "1", "--val-fraction", "0.25"]);
    let o = fluke(&args);
    assert!(o.status.success(), "train --init {}:\n{}", pth.display(), stderr(&o));
    assert!(stderr(&o).contains("(Full)"), "the .pth initialised the whole model:\n{}", stderr(&o));
    // The .pth's counters are 7 + their index; one training step adds one to each, so every counter of the run's
    // checkpoint must be the file's plus one (a run that ignored --init would start them at 0).
    let golden = fluke::model::weights::read_weight_file(&fixture("unet_w16.safetensors")).unwrap();
    let last = fluke::model::weights::read_weight_file(&run.join("last.safetensors")).unwrap();
    let mut n = 0;
    for (name, t) in &golden.tensors {
        if t.is_int {
            assert_eq!(last.tensors[name].data[0], t.data[0] + 1.0, "{name}");
            n += 1;
        }
    }
    assert_eq!(n, 46);
}

#[test]
fn export_of_a_pickle_that_calls_code_is_one_line_and_writes_nothing() {
    let d = tempdir();
    for pth in ["malicious_zip.pth", "malicious_legacy.pth"] {
        let out = d.path().join("x.safetensors");
        let o = fluke(&["export", "--weights", s(&fixture(pth)), "--out", s(&out)]);
        let l = one_line_error(&o, &[pth, "posix.system", "torch.save(model.state_dict(), path)"]);
        assert!(!String::from_utf8_lossy(&o.stdout).contains("fluke-was-tricked"), "the pickle ran");
        assert!(!out.exists(), "{pth}: an output was written");
        row(&format!("pickle calling os.system ({pth}, export)"), &l, "export::export_of_a_pickle_that_calls_code_is_one_line_and_writes_nothing");
    }
}

/// The Keras architecture through the same command: its names come from the model (Keras `layer/weight:0` names),
/// not from export, and predict agrees on the .h5 and on its export.
#[test]
fn export_of_a_keras_h5_keeps_the_keras_names_and_predictions() {
    let d = tempdir();
    let h5 = fixture("keras_w16.h5");
    let out = d.path().join("keras.safetensors");
    let o = fluke(&["export", "--weights", s(&h5), "--out", s(&out)]);
    assert!(o.status.success(), "export keras_w16.h5:\n{}", stderr(&o));
    let f = fluke::model::weights::read_weight_file(&out).unwrap();
    assert_eq!(f.metadata.get("fluke.arch").map(String::as_str), Some("unet-keras-seresnet34"));
    assert!(f.tensors.keys().all(|k| k.ends_with(":0")), "Keras names");
    assert!(f.tensors.contains_key("bn0/gamma:0"));
    let (images, _) = synth(&d.path().join("data"), 2, 6);
    let mut probs = Vec::new();
    for (tag, w) in [("h5", h5.clone()), ("export", out.clone())] {
        let p = d.path().join(format!("pred-{tag}"));
        let o = fluke(&["predict", "--weights", s(&w), "--input", s(&images), "--out", s(&p), "--size", "64x32", "--tta", "none", "--save-probs"]);
        assert!(o.status.success(), "predict {tag}:\n{}", stderr(&o));
        probs.push(files(&p).iter().filter(|f| f.extension().is_some_and(|e| e == "npy")).map(|f| std::fs::read(f).unwrap()).collect::<Vec<_>>());
    }
    assert_eq!(probs[0].len(), 2);
    assert_eq!(probs[0], probs[1], "predict on the .h5 and on its export differ");
}
