#!/usr/bin/env python3
"""Writes eval/questions-paraphrase.jsonl: questions asked the way clinicians and patients speak
(consumer words, abbreviations, brand names, misspellings, British spellings, relative times),
with the gold answer and gold evidence computed from the ingested records.

The wording is written by hand below, per question kind and per concept; it is deliberately NOT
taken from data/synonyms.json or data/vocabulary.json, so the set measures how well question
analysis copes with words it was not built from. Which records answer a question is computed
from the normalised records in an ehrqa data directory (its SQLite store), with the rules of the
dev-set generator (src/eval/generate.rs): latest = the last record of the series (not tied with
the one before), a value on a date = the only record of the series that day, highest/lowest =
a unique extreme, trend = first and last of at least 4, first diagnosis = the first disorder
record, ever had = the last record, active medications = every active MedicationRequest (at most
15), allergies = every AllergyIntolerance, encounters in a year = every Encounter that year,
note content = the only note of that day with a chief complaint. A concept here may span
several codes ("blood sugar": glucose in blood and in serum); its series is all of them.

The wording came in three batches. The first (the tables below) was measured, and the question
analysis and vocabulary were fixed where it failed (never the questions); the second and third
(MORE_* and THIRD_*) were each written after the previous fixes and measured before any fix for
them, so each round also measured words nobody had tuned on.

Run from the repo root, after ingesting ../shared/data/synthea and ../shared/data/synthea-java:
  ehrqa --data-dir DIR ingest ../shared/data/synthea ../shared/data/synthea-java
  python3 tools/make_paraphrases.py --data-dir DIR [--out eval/questions-paraphrase.jsonl]
  ehrqa --data-dir DIR eval retrieval --questions eval/questions-paraphrase.jsonl --budget 2048
"""
import argparse
import json
import os
import random
import sqlite3
import sys
from collections import defaultdict

# The fixture patients (fixtures/fhir/synthea*, also in the shared data): always asked about.
FIXTURE_PATIENTS = [
    "fcadcaee-3101-4fd7-89b8-b73630df93c0",  # Mervin Gaylord
    "7e58e78c-ba17-4bc7-a711-b44a20ca76d7",  # Dong Effertz
    "3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b",  # Bob965 Keeling57
    "f1731e33-dc55-4ee8-72d7-cece2e49bedd",  # Cecelia952 Romaguera67
]

J = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"  # the padding of Java Synthea's OpenMRS codes

# --- Labs and vitals: the codes of the series, and how people name them -------------------------
# "trend" lists whole questions for the concept (besides the generic templates).
MEASURES = {
    "a1c": dict(codes=["4548-4"], names=[
        "A1C", "HbA1c", "haemoglobin A1c", "hemoglobin A1C", "Hgb A1c", "glycated haemoglobin",
        "sugar control test", "three month sugar", "hba1c level", "A1c number"],
        trend=["Is {pos} sugar control getting better?", "How has {pos} diabetes control been going?",
               "Is {pos} HbA1c improving?"]),
    "glucose": dict(codes=["2339-0", "2345-7"], names=[
        "blood sugar", "sugar", "glucose", "sugar level", "blood glucose", "BG", "sugar reading",
        "glucose level", "blood sugars"]),
    "cholesterol": dict(codes=["2093-3"], names=[
        "cholesterol", "total cholesterol", "cholesterol number", "cholestrol", "total chol",
        "cholesterol level"],
        trend=["Are {pos} cholesterol numbers coming down?", "Is {pos} cholesterol better than before?"]),
    "ldl": dict(codes=["18262-6", "13457-7", "2089-1"], names=[
        "LDL", "bad cholesterol", "LDL-C", "LDL cholesterol", "ldl level"]),
    "hdl": dict(codes=["2085-9"], names=["HDL", "good cholesterol", "HDL-C", "HDL level"]),
    "trig": dict(codes=["2571-8"], names=[
        "triglycerides", "trigs", "triglyceride level", "triglicerides", "TGs"]),
    "creatinine": dict(codes=["2160-0", "38483-4"], names=[
        "creatinine", "creat", "serum creatinine", "creatinine level", "creatinin", "Cr"]),
    "egfr": dict(codes=["33914-3", "62238-1", "48642-3", "48643-1"], names=[
        "eGFR", "GFR", "kidney function", "filtration rate", "kidney filtration", "renal function"],
        trend=["How is {pos} kidney function holding up?", "Are {pos} kidneys getting worse?",
               "Is {pos} renal function declining?"]),
    "bun": dict(codes=["6299-2", "3094-0"], names=["BUN", "urea", "blood urea nitrogen", "urea nitrogen"]),
    "potassium": dict(codes=["6298-4", "2823-3"], names=["potassium", "K level", "potasium", "potassium level"]),
    "sodium": dict(codes=["2947-0", "2951-2"], names=["sodium", "Na", "sodium level", "salt level"]),
    "calcium": dict(codes=["49765-1", "17861-6"], names=["calcium", "calcium level", "Ca level"]),
    "chloride": dict(codes=["2069-3", "2075-0"], names=["chloride", "chloride level"]),
    "co2": dict(codes=["20565-8", "2028-9"], names=["bicarb", "CO2", "total CO2", "bicarbonate level"]),
    "hemoglobin": dict(codes=["718-7"], names=[
        "hemoglobin", "haemoglobin", "Hb", "Hgb", "hemaglobin", "blood count", "anaemia numbers"],
        trend=["How is {pos} anemia doing?", "How's {pos} anaemia?", "Is {pos} haemoglobin recovering?"]),
    "hematocrit": dict(codes=["4544-3", "20570-8"], names=[
        "hematocrit", "haematocrit", "Hct", "crit", "packed cell volume"]),
    "wbc": dict(codes=["6690-2"], names=[
        "white count", "WBC", "white cell count", "white blood cells", "leucocyte count", "white blood count"]),
    "platelets": dict(codes=["777-3"], names=["platelets", "platelet count", "PLT", "platlets", "plts"]),
    "rbc": dict(codes=["789-8"], names=["red count", "RBC", "red cell count", "red blood cells"]),
    "mcv": dict(codes=["787-2"], names=["MCV", "mean cell volume", "red cell size"]),
    "weight": dict(codes=["29463-7", "5089" + J[:32]], names=[
        "weight", "wt", "body weight", "weight in kilos"],
        trend=["Has {sub} gained or lost weight?", "Is {sub} putting on weight?", "Has {pos} weight gone up?"]),
    "height": dict(codes=["8302-2", "5090" + J[:32]], names=["height", "ht", "body height"],
                   trend=["How much has {sub} grown?"]),
    "bmi": dict(codes=["39156-5"], names=["BMI", "body mass index", "body-mass index", "bmi number"]),
    "bp": dict(codes=["85354-9"], names=["blood pressure", "BP", "pressure", "b.p.", "blood pressure reading"],
               trend=["How has {pos} blood pressure been over the years?", "Is {pos} BP under control?"]),
    "systolic": dict(codes=["8480-6"], names=["systolic", "top number", "systolic pressure", "SBP"]),
    "diastolic": dict(codes=["8462-4"], names=["diastolic", "bottom number", "diastolic pressure", "DBP"]),
    "pulse": dict(codes=["8867-4", "5087" + J[:32]], names=[
        "pulse", "heart rate", "HR", "pulse rate", "heartbeat"]),
    "resp": dict(codes=["9279-1"], names=["breathing rate", "respiratory rate", "resp rate", "RR"]),
    "temp": dict(codes=["8310-5", "5088" + J[:32]], names=["temperature", "temp", "body temperature"]),
    "spo2": dict(codes=["2708-6", "5092" + J[:32]], names=[
        "oxygen level", "O2 sat", "sats", "SpO2", "oxygen saturation", "pulse ox"]),
    "pain": dict(codes=["72514-3"], names=["pain score", "pain level", "pain rating"]),
    "phq9": dict(codes=["44261-6"], names=["PHQ9", "PHQ-9 score", "depression score"]),
    "gad7": dict(codes=["70274-6"], names=["GAD7", "GAD-7 score", "anxiety score"]),
    "alt": dict(codes=["1742-6"], names=["ALT", "SGPT", "alanine transaminase"]),
    "ast": dict(codes=["1920-8"], names=["AST", "SGOT", "aspartate transaminase"]),
    "alp": dict(codes=["6768-6"], names=["alk phos", "ALP", "alkaline phosphatase"]),
    "bili": dict(codes=["1975-2"], names=["bilirubin", "bili", "total bili"]),
    "albumin": dict(codes=["1751-7"], names=["albumin", "albumin level"]),
    "inr": dict(codes=["6301-6"], names=["INR", "clotting test", "INR level"]),
    "tsh": dict(codes=["3016-3"], names=["TSH", "thyroid level", "thyroid test"]),
    "psa": dict(codes=["2857-1"], names=["PSA", "prostate blood test", "PSA level"]),
    "magnesium": dict(codes=["19123-9"], names=["magnesium", "mag level", "Mg level"]),
    "head": dict(codes=["9843-4"], names=["head circumference", "head size", "OFC"]),
}

# --- Conditions: codes of the disorder, and names ------------------------------------------------
CONDITIONS = {
    "gingivitis": (["66383009"], ["gingivitis", "inflamed gums", "gum inflammation", "gingivitus"]),
    "pharyngitis": (["195662009"], ["a sore throat", "viral sore throat", "pharyngitis", "a throat infection"]),
    "sinusitis": (["444814009", "36971009"], ["a sinus infection", "sinusitis", "sinus trouble"]),
    "otitis": (["65363002"], ["an ear infection", "ear infections", "middle ear infection", "otitis media"]),
    "bronchitis": (["10509002"], ["bronchitis", "a chest cold", "a chest infection", "bronchitus"]),
    "gum disease": (["18718003"], ["gum disease", "gum problems"]),
    "caries": (["109570002"], ["cavities", "tooth decay", "dental caries", "a cavity"]),
    "fracture": (["125605004"], ["a broken bone", "a fracture", "broken bones"]),
    "strep": (["43878008"], ["strep throat", "strep", "a strep infection"]),
    "anemia": (["271737000"], ["anemia", "anaemia", "low blood count", "anaemic episodes"]),
    "laceration": (["312608009"], ["a laceration", "a bad cut", "a gash"]),
    "cystitis": (["307426000"], ["a bladder infection", "a UTI", "a water infection", "cystitis"]),
    "concussion": (["110030002", "62106007", "62564004"], ["a concussion", "concussion", "a concusion"]),
    "clavicle": (["58150001"], ["a broken collarbone", "a collar bone fracture", "a fractured clavicle"]),
    "hypertension": (["59621000"], ["high blood pressure", "HTN", "hypertension", "hypertention",
                                    "raised blood pressure", "high BP"]),
    "ankle sprain": (["44465007"], ["a sprained ankle", "a twisted ankle", "an ankle sprain"]),
    "chronic sinusitis": (["40055000"], ["chronic sinusitis", "chronic sinus problems"]),
    "whiplash": (["39848009"], ["whiplash", "a whiplash injury"]),
    "migraine": (["37796009", "124171000119105"], ["migraines", "migraine headaches", "migranes"]),
    "wrist sprain": (["70704007"], ["a sprained wrist", "a wrist sprain"]),
    "drug abuse": (["6525002"], ["drug addiction", "a drug problem", "substance dependence"]),
    "tooth infection": (["427898007"], ["a tooth abscess", "an infected tooth", "a tooth infection"]),
    "ihd": (["414545008"], ["heart disease", "coronary artery disease", "CAD", "ischaemic heart disease"]),
    "covid": (["840539006"], ["covid", "COVID-19", "coronavirus", "covid 19"]),
    "appendicitis": (["74400008"], ["appendicitis", "an inflamed appendix", "appendicitus"]),
    "hyperlipidemia": (["55822004"], ["high cholesterol", "hyperlipidaemia", "hyperlipidemia", "high lipids"]),
    "ckd": (["431855005", "431856006", "433144002", "431857002", "46177005"],
            ["chronic kidney disease", "CKD", "kidney disease", "chronic renal disease"]),
    "depression": (["370143000", "36923009"], ["depression", "major depression", "MDD", "clinical depression"]),
    "pneumonia": (["233604007"], ["pneumonia", "pnemonia", "a lung infection"]),
    "ankle fracture": (["16114001"], ["a broken ankle", "an ankle fracture", "a fractured ankle"]),
    "overdose": (["1149222004"], ["an overdose", "an OD"]),
    "polyp": (["68496003"], ["colon polyps", "a polyp in the bowel", "bowel polyps"]),
    "forearm fracture": (["65966004"], ["a broken arm", "a broken forearm", "a forearm fracture"]),
    "afib": (["49436004"], ["afib", "a-fib", "atrial fibrillation", "an irregular heartbeat", "atrial fibrilation"]),
    "miscarriage": (["19169002"], ["a miscarriage", "a pregnancy loss", "a miscarrage"]),
    "eczema": (["24079001"], ["eczema", "atopic eczema", "atopic dermatitis"]),
    "rib fracture": (["33737001"], ["a broken rib", "a cracked rib", "a rib fracture"]),
    "metabolic syndrome": (["237602007"], ["metabolic syndrome", "syndrome X"]),
    "hay fever": (["232353008", "446096008"], ["hay fever", "allergic rhinitis", "seasonal allergies"]),
    "colon cancer": (["93761005", "363406005", "109838007", "94260004"],
                     ["colon cancer", "bowel cancer", "colorectal cancer"]),
    "sepsis": (["91302008"], ["sepsis", "blood poisoning", "septicaemia"]),
    "emphysema": (["87433001"], ["emphysema", "COPD"]),
    "osteoporosis": (["64859006"], ["osteoporosis", "thin bones", "brittle bones", "osteoperosis"]),
    "diabetes": (["44054006"], ["diabetes", "type 2 diabetes", "T2DM", "sugar diabetes", "diabetis",
                                "type II diabetes", "DM2"]),
    "alzheimers": (["26929004"], ["alzheimers", "Alzheimer's", "dementia"]),
    "breast cancer": (["254837009"], ["breast cancer", "cancer of the breast", "a breast tumour"]),
    "knee oa": (["239873007"], ["arthritis in the knee", "knee arthritis", "knee osteoarthritis"]),
    "mi": (["22298006", "401314000", "401303003"], ["a heart attack", "an MI", "a myocardial infarction"]),
    "epilepsy": (["84757009"], ["epilepsy", "seizures", "fits"]),
    "glaucoma": (["84494001"], ["glaucoma"]),
    "hypothyroid": (["83664006"], ["an underactive thyroid", "hypothyroidism", "low thyroid"]),
    "sleep apnea": (["78275009", "73430006"], ["sleep apnoea", "sleep apnea", "OSA"]),
    "pe": (["706870000"], ["a blood clot in the lung", "a PE", "a pulmonary embolism"]),
    "psoriasis": (["9014002"], ["psoriasis", "psoriasis flare"]),
}

# Conditions nobody with these codes (or a record whose display says so) should be asked about
# "ever": the names, the codes that would make it present, and display words.
ABSENT_CONDITIONS = [
    (["a heart attack", "an MI", "a myocardial infarction"],
     ["22298006", "401314000", "401303003", "399211009"], ["myocardial infarction"]),
    (["a stroke", "a CVA"], ["230690007"], ["stroke", "cerebrovascular"]),
    (["asthma", "an asthma attack"], ["195967001", "233678006"], ["asthma"]),
    (["COPD", "emphysema"], ["87433001", "185086009", "13645005"], ["emphysema", "obstructive"]),
    (["diabetes", "sugar diabetes", "T2DM", "diabetis"],
     ["44054006", "46635009", "714628002"], ["diabet"]),
    (["high blood pressure", "HTN", "hypertention"], ["59621000", "38341003"], ["hypertension"]),
    (["afib", "an irregular heartbeat"], ["49436004"], ["atrial fibrillation"]),
    (["breast cancer"], ["254837009"], ["breast"]),
    (["prostate cancer"], ["92691004", "126906006", "315268008"], ["prostate"]),
    (["lung cancer"], ["254637007", "424132000", "162573006"], ["lung", "bronch"]),
    (["bowel cancer", "colon cancer"], ["93761005", "363406005", "109838007", "94260004"], ["colon", "rect"]),
    (["epilepsy", "seizures"], ["84757009", "703151001"], ["epilep", "seizure"]),
    (["gout"], ["90560007"], ["gout"]),
    (["rheumatoid arthritis"], ["69896004"], ["rheumatoid"]),
    (["osteoporosis", "brittle bones"], ["64859006"], ["osteopor"]),
    (["dementia", "Alzheimer's"], ["26929004", "230265002"], ["alzheimer", "dementia"]),
    (["HIV"], ["86406008"], ["hiv", "immunodeficiency"]),
    (["hepatitis C", "hep C"], ["128302006"], ["hepatitis"]),
    (["kidney stones"], ["95570007"], ["kidney stone", "calculus"]),
    (["pneumonia", "pnemonia"], ["233604007"], ["pneumonia"]),
    (["sleep apnoea", "OSA"], ["73430006", "78275009"], ["apnea"]),
    (["an underactive thyroid", "hypothyroidism"], ["83664006", "40930008"], ["thyroid"]),
    (["anaemia", "anemia"], ["271737000", "87522002"], ["anemia"]),
    (["depression"], ["370143000", "36923009"], ["depress"]),
    (["lupus"], ["55464009"], ["lupus"]),
    (["glaucoma"], ["84494001"], ["glaucoma"]),
    (["a water infection", "a UTI", "a bladder infection"], ["307426000", "68566005"],
     ["cystitis", "urinary tract"]),
    (["sepsis", "blood poisoning"], ["91302008"], ["sepsis"]),
    (["tuberculosis", "TB"], ["112141" + J[:30], "56717001"], ["tuberculosis"]),
    (["bipolar disorder", "manic depression"], ["9340000", "13746004"], ["bipolar"]),
    (["eczema"], ["24079001"], ["dermatitis", "eczema"]),
    (["hay fever"], ["232353008", "446096008"], ["rhinitis"]),
    (["cystic fibrosis"], ["190905008"], ["cystic fibrosis"]),
    (["acid reflux", "GORD", "GERD"], ["235595009"], ["reflux"]),
    (["Crohn's disease"], ["34000006"], ["crohn"]),
    (["gallstones"], ["235919008"], ["gallstone", "cholelithiasis"]),
]

# Labs nobody has measured for the patient: names, codes, display words.
ABSENT_LABS = [
    (["PSA", "prostate blood test"], ["2857-1"], ["prostate"]),
    (["TSH", "thyroid level", "thyroid function"], ["3016-3", "3024-7"], ["thyro"]),
    (["troponin", "trop"], ["89579-7", "6598-7", "10839-9"], ["troponin"]),
    (["vitamin D", "vit D level"], ["1989-3", "62292-8"], ["vitamin d", "hydroxyvitamin"]),
    (["ferritin", "iron stores"], ["2276-4"], ["ferritin"]),
    (["B12 level", "vitamin B12"], ["2132-9"], ["cobalamin", "b12"]),
    (["INR", "clotting test"], ["6301-6", "5902-2", "34714-6"], ["inr", "prothrombin"]),
    (["magnesium", "mag level"], ["19123-9"], ["magnesium"]),
    (["lipase"], ["3040-3"], ["lipase"]),
    (["BNP", "pro-BNP"], ["30934-4", "33762-6", "42637-9"], ["natriuretic"]),
    (["CRP", "C-reactive protein"], ["1988-5", "30522-7"], ["reactive protein"]),
    (["sed rate", "ESR"], ["4537-7", "30341-2"], ["sedimentation"]),
    (["HbA1c", "A1C", "sugar control test"], ["4548-4"], ["a1c"]),
    (["cholesterol", "cholesterol numbers", "lipids"], ["2093-3", "18262-6", "2085-9", "2571-8"],
     ["cholesterol", "triglyceride"]),
    (["uric acid"], ["3084-1"], ["urate", "uric"]),
    (["lactate", "lactic acid"], ["2524-7", "32693-4"], ["lactate"]),
    (["microalbumin"], ["14959-1", "9318-7"], ["albumin/creatinine", "microalbumin"]),
    (["eGFR", "kidney function"], ["33914-3", "2160-0", "38483-4", "62238-1"],
     ["glomerular", "creatinine"]),
    (["PHQ-9", "depression score"], ["44261-6"], ["phq-9", "questionnaire 9"]),
]

# --- Procedures ------------------------------------------------------------------------------
PROCEDURES = {
    "colonoscopy": (["73761001"], ["a colonoscopy", "a colonscopy", "a scope of the bowel", "a colonoscopy done"]),
    "cxr": (["399208008"], ["a chest x-ray", "a CXR", "a chest xray", "a chest film"]),
    "ecg": (["29303009"], ["an EKG", "an ECG", "a heart tracing", "an electrocardiogram"]),
    "throat culture": (["117015009"], ["a throat swab", "a throat culture", "a strep swab"]),
    "dental cleaning": (["1260010008", "1260009003"], ["a teeth cleaning", "a dental cleaning",
                                                       "a scale and polish", "a cleaning at the dentist"]),
    "bitewing": (["241046008"], ["dental x-rays", "bitewings", "teeth x-rays"]),
    "fluoride": (["68071007"], ["a fluoride treatment", "fluoride varnish"]),
    "depression screen": (["171207006", "715252007"], ["a depression screen", "depression screening",
                                                      "a PHQ-9 screen"]),
    "med rec": (["430193006"], ["a med rec", "a medication reconciliation", "a medicines reconciliation"]),
    "sutures": (["288086009"], ["stitches", "sutures", "a wound stitched up"]),
    "appendectomy": (["80146002"], ["an appendectomy", "an appendicectomy", "{pos} appendix out",
                                    "{pos} appendix removed"]),
    "iud": (["65200003"], ["an IUD put in", "a coil fitted", "an IUD insertion"]),
    "wisdom teeth": (["65546002"], ["{pos} wisdom teeth out", "a wisdom tooth removal",
                                    "a wisdom tooth extraction"]),
    "angiogram": (["33367005"], ["a coronary angiogram", "a heart cath", "a cardiac cath"]),
    "pci": (["415070008"], ["a stent", "an angioplasty", "a PCI"]),
    "cabg": (["232717009", "418824004"], ["bypass surgery", "a heart bypass", "a CABG"]),
    "dexa": (["312681000"], ["a DEXA scan", "a bone density test", "a DXA"]),
    "dialysis": (["265764009"], ["dialysis", "haemodialysis", "kidney dialysis"]),
    "transfusion": (["71493000", "180207008"], ["a blood transfusion", "a transfusion"]),
    "echo": (["433236007", "40701008"], ["an echo", "a heart ultrasound", "an echocardiogram"]),
    "physio": (["91251008"], ["physio", "physical therapy", "physiotherapy", "PT sessions"]),
    "pregnancy test": (["252160004"], ["a pregnancy test"]),
    "cardioversion": (["180325003"], ["a cardioversion", "{pos} heart shocked back into rhythm"]),
    "fobt": (["104435004"], ["a stool test for blood", "an FOBT", "a poo test for blood"]),
    "spirometry": (["23426006"], ["a breathing test", "a lung function test", "spirometry"]),
    "sputum": (["269911007"], ["a sputum test", "a phlegm sample tested"]),
    "intubation": (["52765003"], ["a breathing tube put in", "intubation"]),
    "prostate biopsy": (["65575008"], ["a prostate biopsy"]),
    "polypectomy": (["274031008"], ["a polyp removed", "a polypectomy"]),
    "bone immobilization": (["274474001"], ["a cast put on", "a splint or cast"]),
    "blood smear": (["14768001"], ["a blood film", "a blood smear"]),
    "dental filling": (["1259293006", "1256042007"], ["a filling", "a tooth filled"]),
    "urine culture": (["117010004"], ["a urine culture", "a urine sample sent off"]),
}

# --- Vaccines --------------------------------------------------------------------------------
VACCINES = {
    "flu": (["140", "141", "150", "158", "161"], ["flu shot", "flu jab", "flu vaccine", "influenza vaccine",
                                                 "flu vax", "influenza shot"]),
    "polio": (["10"], ["polio vaccine", "polio shot", "IPV"]),
    "mmr": (["03"], ["MMR", "measles shot", "measles mumps rubella vaccine", "MMR jab"]),
    "hib": (["49"], ["Hib vaccine", "Hib shot"]),
    "varicella": (["21"], ["chickenpox vaccine", "chicken pox shot", "varicella jab"]),
    "hepb": (["08", "43"], ["hep B vaccine", "hepatitis B shot", "hepatitis B jab"]),
    "td": (["113", "09"], ["tetanus shot", "tetanus booster", "Td booster"]),
    "tdap": (["115"], ["whooping cough vaccine", "Tdap", "Boostrix", "pertussis booster"]),
    "hepa": (["83", "52"], ["hep A vaccine", "hepatitis A jab", "hepatitis A shot"]),
    "dtap": (["20"], ["DTaP", "DTaP shot"]),
    "mening": (["114", "136"], ["meningitis vaccine", "meningococcal shot", "Menactra"]),
    "pcv13": (["133"], ["Prevnar", "Prevnar 13", "pneumococcal conjugate vaccine", "PCV13"]),
    "hpv": (["62", "165"], ["HPV vaccine", "Gardasil", "HPV jab"]),
    "rota": (["119", "116", "122"], ["rotavirus vaccine", "Rotarix"]),
    "zoster": (["121", "187"], ["shingles shot", "shingles vaccine", "Zostavax"]),
    "ppsv23": (["33"], ["Pneumovax", "pneumonia shot", "PPSV23"]),
    "covid": (["207", "208", "213", "210", "212", "211"],
              ["covid shot", "covid jab", "coronavirus vaccine", "covid vaccine", "COVID booster"]),
}

# A second batch of wording, written after the first batch had been measured (and the vocabulary
# fixed for it); kept apart so the set also holds words nobody tuned the analysis on.
MORE_MEASURE_NAMES = {
    "a1c": ["glycosylated hemoglobin", "HgbA1c", "the A1c", "diabetic number", "average sugar"],
    "glucose": ["sugar levels", "glucose number", "BSL", "random glucose", "blood sugar reading"],
    "cholesterol": ["chol level", "serum cholesterol", "cholesterol reading"],
    "ldl": ["LDL number", "low-density lipoprotein"],
    "hdl": ["high-density lipoprotein", "HDL number"],
    "trig": ["triglyceride", "trig level"],
    "creatinine": ["creatinine number", "kidney number", "creatnine"],
    "egfr": ["kidney score", "estimated GFR", "e-GFR", "glomerular filtration"],
    "bun": ["BUN level", "urea level"],
    "potassium": ["K+", "serum potassium", "potassium number"],
    "sodium": ["serum sodium", "salt levels"],
    "hemoglobin": ["haemoglobin level", "Hb level"],
    "wbc": ["white cells", "leukocytes", "WBCs", "white blood cell level"],
    "platelets": ["platelet level", "plt count"],
    "weight": ["weight measurement", "body wt"],
    "height": ["height measurement", "stature"],
    "bmi": ["BMI reading", "body mass"],
    "bp": ["BP reading", "blood pressures"],
    "pulse": ["heart beat", "pulse reading"],
    "temp": ["temperature reading", "temp reading"],
    "spo2": ["O2 sats", "oxygen sats", "sat level"],
    "resp": ["breaths per minute", "respiration rate"],
    "pain": ["pain scale", "pain number"],
    "phq9": ["PHQ 9", "depression questionnaire score"],
    "gad7": ["GAD 7", "anxiety questionnaire score"],
    "alt": ["ALT level"], "ast": ["AST level"], "alp": ["alkaline phos"], "bili": ["bilirubin level"],
    "albumin": ["serum albumin"], "inr": ["PT/INR", "protime"], "tsh": ["thyroid stimulating hormone"],
    "psa": ["prostate specific antigen"],
}
MORE_CONDITION_NAMES = {
    "gingivitis": ["bleeding gums"], "pharyngitis": ["a bad throat"], "sinusitis": ["sinus problems"],
    "otitis": ["an earache"], "bronchitis": ["acute bronchitis"], "caries": ["a decayed tooth", "rotten teeth"],
    "fracture": ["a break"], "strep": ["streptococcal pharyngitis"], "anemia": ["low haemoglobin", "being anaemic"],
    "cystitis": ["a urine infection", "UTIs"], "hypertension": ["elevated blood pressure", "hypertensive disease"],
    "migraine": ["bad headaches", "migraine attacks"], "ihd": ["ischemic heart disease", "coronary heart disease"],
    "covid": ["COVID infection", "SARS-CoV-2"], "hyperlipidemia": ["raised cholesterol", "dyslipidaemia"],
    "ckd": ["chronic kidney problems", "renal impairment"], "depression": ["low mood", "depressive disorder"],
    "afib": ["AF", "atrial fib"], "diabetes": ["diabetes mellitus", "type 2 DM", "adult onset diabetes", "NIDDM"],
    "osteoporosis": ["weak bones"], "alzheimers": ["Alzheimer disease"], "mi": ["a STEMI", "a coronary"],
    "epilepsy": ["a seizure disorder"], "sleep apnea": ["obstructive sleep apnoea"],
    "hypothyroid": ["an under-active thyroid"], "eczema": ["dermatitis"], "hay fever": ["seasonal rhinitis"],
    "concussion": ["a head injury", "a mild TBI"], "laceration": ["a cut", "a wound that needed stitches"],
    "polyp": ["a colon polyp"], "sepsis": ["septicemia"],
}
MORE_ABSENT_CONDITIONS = [
    (["heart failure", "CHF", "a weak heart"], ["84114007", "88805009"], ["heart failure"]),
    (["a TIA", "a mini stroke"], ["266257000"], ["ischemic attack"]),
    (["multiple sclerosis"], ["24700007"], ["sclerosis"]),
    (["Parkinson's", "Parkinson's disease"], ["49049000"], ["parkinson"]),
    (["coeliac disease", "celiac disease"], ["396331005"], ["celiac", "coeliac"]),
    (["ulcerative colitis"], ["64766004"], ["colitis"]),
    (["shingles"], ["4740000"], ["zoster", "shingles"]),
    (["IBS", "irritable bowel"], ["10743008"], ["irritable"]),
    (["an overactive thyroid"], ["34486009"], ["thyro"]),
    (["schizophrenia"], ["58214004"], ["schizo"]),
    (["ADHD", "attention deficit disorder"], ["406506008", "192127007"], ["attention"]),
    (["a DVT", "a blood clot in the leg"], ["128053003", "132281000119108"], ["thrombosis"]),
    (["sickle cell disease", "sickle cell"], ["417357006"], ["sickle"]),
    (["cataracts"], ["193570009", "247053007"], ["cataract"]),
]
MORE_ABSENT_LABS = [
    (["iron level", "serum iron"], ["2498-4"], ["iron"]),
    (["folate", "folic acid level"], ["2284-8"], ["folate"]),
    (["testosterone"], ["2986-8"], ["testosterone"]),
    (["amylase"], ["1798-8"], ["amylase"]),
    (["D-dimer"], ["48065-7", "48066-5"], ["dimer"]),
    (["cortisol"], ["2143-6"], ["cortisol"]),
]
MORE_PROCEDURE_NAMES = {
    "colonoscopy": ["a bowel scope"], "cxr": ["a chest radiograph", "a chest X ray"],
    "ecg": ["a 12-lead ECG", "an ekg tracing"], "dental cleaning": ["a dental scale and clean", "{pos} teeth scaled"],
    "appendectomy": ["an appendix operation"], "iud": ["an IUCD"], "cabg": ["a triple bypass", "coronary bypass surgery"],
    "dexa": ["a bone scan", "bone densitometry"], "dialysis": ["renal dialysis"],
    "transfusion": ["packed red cells"], "echo": ["a cardiac echo", "an echo scan"],
    "physio": ["physical therapy sessions", "rehab"], "spirometry": ["PFTs", "pulmonary function tests"],
    "sutures": ["a wound closure", "stitches put in"], "wisdom teeth": ["{pos} wisdom teeth pulled"],
    "pci": ["a coronary stent", "stenting"],
}
MORE_VACCINE_NAMES = {
    "flu": ["influenza jab", "flu immunization", "Fluzone"], "mmr": ["MMR booster"], "polio": ["IPOL", "polio jab"],
    "varicella": ["Varivax"], "hepb": ["Engerix-B", "hep B jab"], "td": ["tetanus jab", "Tenivac"],
    "tdap": ["Adacel"], "hepa": ["Havrix", "Vaqta"], "mening": ["Menveo", "MCV4"],
    "pcv13": ["Prevenar 13", "pneumococcal jab"], "hpv": ["Gardasil 9"], "rota": ["RotaTeq"],
    "zoster": ["Shingrix"], "ppsv23": ["pneumococcal polysaccharide vaccine"],
    "covid": ["covid-19 vaccine", "coronavirus jab", "covid vaccination"],
}
MORE_TEMPLATES = {
    "latest_value": ["How was {pos} {x} last time?", "Most up to date {x}?", "What's the newest {x} result?",
                     "What did the last {x} show?", "What was {pos} {x} at {pos} most recent check-up?"],
    "value_on_date": ["What was {pos} {x} back on {date}?", "{x} result dated {date}?", "{x} as of {date}?"],
    "highest": ["How high did {pos} {x} get?", "Biggest {x} ever?", "What was {pos} {x} at its worst?",
                "Highest recorded {x}?"],
    "lowest": ["How low did {pos} {x} go?", "What was {pos} {x} at its lowest point?", "Least {x} recorded?"],
    "trend": ["How has {pos} {x} moved over the years?", "Is {pos} {x} trending down?",
              "What's the trend in {pos} {x}?", "Has {pos} {x} improved since the first reading?"],
    "first_diagnosis": ["How long has {sub} had {x}?", "When did {x} first show up in {pos} record?",
                        "What year was {sub} diagnosed with {x}?", "Since when has {sub} had {x}?"],
    "ever_had_yes_condition": ["Has {sub} had {x} in the past?", "Hx of {x}?", "Was {sub} ever treated for {x}?"],
    "ever_had_yes_procedure": ["Has {sub} undergone {x}?", "Was {x} ever done?"],
    "ever_had_no": ["Hx of {x}?", "Was {sub} ever treated for {x}?", "Any {x} in the past?",
                    "Has {sub} had {x} in the past?"],
    "unanswerable": ["Have we checked {pos} {x}?", "When was {pos} {x} last done and what was it?", "{x} value?"],
    "last_procedure": ["When was {x} last done?", "How long ago did {sub} have {x}?"],
    "immunization_date": ["When did {sub} get {pos} {x}?", "When was {sub} last vaccinated with the {x}?",
                          "Most recent {x} date?"],
    "encounter_count": ["How many times did {sub} come in during {date}?", "How many visits to the clinic in {date}?",
                        "How often was {sub} seen in {date}?", "Total number of appointments in {date}?",
                        "How many trips to the doctor in {date}?"],
    "note_content": ["What did {sub} come in for on {date}?", "What was wrong with {obj} on {date}?",
                     "What was the problem on {date}?", "What was going on with {obj} on {date}?",
                     "What did the visit on {date} address?"],
    "active_medications": ["What is {sub} on at the moment?", "Current meds?", "What does {sub} take every day?",
                           "Which medicines is {sub} on?", "What's {sub} taking currently?"],
    "allergies": ["Any allergies I should know about?", "Does {sub} react to any medications?",
                  "Drug allergy status?", "Is {sub} allergic to any meds?", "Any intolerances?"],
}

# A third batch, written after the second had been measured and fixed for; again untuned.
THIRD_MEASURE_NAMES = {
    "a1c": ["hemoglobin A1c %", "glyco", "diabetes number"], "glucose": ["sugar result", "glu"],
    "cholesterol": ["lipid level", "chol"], "ldl": ["LDL-cholesterol"], "hdl": ["HDL-cholesterol"],
    "trig": ["TG"], "creatinine": ["creatinine clearance"], "egfr": ["kidney function test"],
    "potassium": ["K"], "sodium": ["sodium result"], "hemoglobin": ["Hgb result", "haemoglobin count"],
    "wbc": ["white blood count", "white cell result"], "platelets": ["platelet result"],
    "weight": ["weight in kg", "how much {sub} weighs"], "height": ["how tall {sub} is"],
    "bmi": ["BMI score"], "bp": ["BP's", "bp numbers"], "pulse": ["resting heart rate"],
    "temp": ["body temp"], "spo2": ["oxygen sat"], "pain": ["pain"],
}
THIRD_CONDITION_NAMES = {
    "hypertension": ["blood pressure problems"], "diabetes": ["diabetes type 2", "sugar problems"],
    "anemia": ["iron-poor blood"], "otitis": ["ear trouble"], "sinusitis": ["sinus infections"],
    "bronchitis": ["a bad chest"], "fracture": ["broken bones"], "hyperlipidemia": ["cholesterol problems"],
    "depression": ["depressed mood"], "covid": ["the coronavirus"], "migraine": ["migraine headache"],
    "pharyngitis": ["throat infections"], "gingivitis": ["gum inflammation"],
}
THIRD_ABSENT_CONDITIONS = [
    (["an aneurysm", "AAA"], ["233985008", "432101000124105"], ["aneurysm"]),
    (["heart valve disease"], ["368009", "60234000", "48724000"], ["valve"]),
    (["pancreatitis"], ["75694006"], ["pancrea"]),
    (["diverticulitis"], ["307496006"], ["diverticul"]),
    (["a hernia"], ["414403008"], ["hernia"]),
    (["PCOS", "polycystic ovaries"], ["69878008"], ["polycystic"]),
]
THIRD_ABSENT_LABS = [
    (["hep B surface antigen"], ["5196-1"], ["surface"]),
    (["urine microalbumin"], ["14959-1"], ["microalbumin"]),
    (["CK level"], ["2157-6"], ["kinase"]),
    (["blood alcohol"], ["5640-8"], ["ethanol"]),
]
THIRD_PROCEDURE_NAMES = {
    "colonoscopy": ["a colon scope"], "cxr": ["an X-ray of {pos} chest"], "ecg": ["a cardiogram"],
    "sutures": ["a cut stitched"], "throat culture": ["a throat test"], "physio": ["physical rehab"],
}
THIRD_VACCINE_NAMES = {
    "flu": ["yearly flu shot", "flu immunisation"], "td": ["lockjaw shot"], "mmr": ["measles jab"],
    "covid": ["covid booster shot"], "hepb": ["hepatitis B vaccination"], "zoster": ["shingles immunization"],
}
THIRD_TEMPLATES = {
    "latest_value": ["{x} - most recent?", "Last known {x}?", "Newest {x}?"],
    "value_on_date": ["{x} on {date} please", "Can you tell me {pos} {x} from {date}?"],
    "highest": ["Max {x} ever recorded?", "What's the worst {x} {sub} ever had?"],
    "lowest": ["Min {x}?", "What's the lowest {pos} {x} has been?"],
    "trend": ["Trend of {x}?", "Is the {x} stable?"],
    "first_diagnosis": ["When was {x} first noted?", "Date of first {x} diagnosis?"],
    "ever_had_no": ["Any {x}?", "Is there a history of {x}?"],
    "unanswerable": ["{x} result?", "Did {sub} have a {x} done, and what was it?"],
    "encounter_count": ["Visit count for {date}?", "How many doctor's appointments in {date}?"],
    "note_content": ["Chief complaint on {date}?", "What did {sub} present with on {date}?"],
    "active_medications": ["Med list?", "What medicines does {sub} take?"],
    "allergies": ["Allergic to anything?", "Drug intolerances?"],
}


def merge_third_batch():
    for k, names in THIRD_MEASURE_NAMES.items():
        MEASURES[k]["names"] += names
    for k, names in THIRD_CONDITION_NAMES.items():
        CONDITIONS[k][1].extend(names)
    ABSENT_CONDITIONS.extend(THIRD_ABSENT_CONDITIONS)
    ABSENT_LABS.extend(THIRD_ABSENT_LABS)
    for k, names in THIRD_PROCEDURE_NAMES.items():
        PROCEDURES[k][1].extend(names)
    for k, names in THIRD_VACCINE_NAMES.items():
        VACCINES[k][1].extend(names)
    for k, templates in THIRD_TEMPLATES.items():
        T[k] += templates


def merge_second_batch():
    for k, names in MORE_MEASURE_NAMES.items():
        MEASURES[k]["names"] += names
    for k, names in MORE_CONDITION_NAMES.items():
        CONDITIONS[k][1].extend(names)
    ABSENT_CONDITIONS.extend(MORE_ABSENT_CONDITIONS)
    ABSENT_LABS.extend(MORE_ABSENT_LABS)
    for k, names in MORE_PROCEDURE_NAMES.items():
        PROCEDURES[k][1].extend(names)
    for k, names in MORE_VACCINE_NAMES.items():
        VACCINES[k][1].extend(names)
    for k, templates in MORE_TEMPLATES.items():
        T[k] += templates


# --- Templates per kind ----------------------------------------------------------------------
T = {
    "latest_value": [
        "What's {pos} most recent {x}?", "What was {pos} {x} at {pos} last visit?", "Latest {x}?",
        "Where is {pos} {x} now?", "What was the last {x} we have for {obj}?",
        "What did {pos} {x} come back as most recently?", "Current {x}?",
        "What was {pos} {x} last time it was checked?", "most recent {x} pls",
    ],
    "value_on_date": [
        "What was {pos} {x} on {date}?", "{x} reading from {date}?", "What did {pos} {x} show on {date}?",
        "What was the {x} when {sub} was seen on {date}?", "{x} {date}?", "What was {x} on {date}?",
    ],
    "highest": [
        "What's the highest {x} {sub}'s had?", "Worst {x} on record?", "Peak {x}?",
        "What was {pos} highest ever {x}?", "What was the max {x}?", "Highest {x} reading?",
    ],
    "lowest": [
        "What's the lowest {x} on file?", "Lowest ever {x}?", "Minimum {x}?",
        "What was {pos} lowest {x}?", "What was the smallest {x} recorded for {obj}?",
    ],
    "trend": [
        "Is {pos} {x} getting better or worse?", "How has {pos} {x} been trending?",
        "Is {pos} {x} going up?", "How has {pos} {x} changed over the years?",
        "{x} over time?", "Has {pos} {x} changed much?",
    ],
    "first_diagnosis": [
        "When was {sub} first told {sub} had {x}?", "When did {pos} {x} start?",
        "When was {x} first diagnosed?", "When did {sub} first get {x}?", "Onset of {x}?",
        "When was the {x} diagnosis first made?", "First time {sub} had {x}?",
    ],
    "ever_had_yes_condition": [
        "Has {sub} ever had {x}?", "Any history of {x}?", "Is there any {x} in {pos} history?",
        "Has {sub} been diagnosed with {x}?", "Ever had {x}?", "Does {sub} have a history of {x}?",
    ],
    "ever_had_yes_procedure": [
        "Has {sub} ever had {x}?", "Did {sub} ever have {x}?", "Has {sub} had {x} before?",
        "Any record of {x}?",
    ],
    "ever_had_no": [
        "Has {sub} ever had {x}?", "Any history of {x}?", "Has {sub} been diagnosed with {x}?",
        "Does {sub} have {x}?", "Is {sub} known to have {x}?", "Ever diagnosed with {x}?",
    ],
    "unanswerable": [
        "What was {pos} last {x}?", "What's {pos} {x}?", "Latest {x} result?",
        "What did {pos} {x} come back as?", "Most recent {x}?",
    ],
    "last_procedure": [
        "When was {pos} last {x}?", "When did {sub} last have {x}?", "Date of {pos} most recent {x}?",
        "When did {sub} most recently have {x}?", "Last time {sub} had {x}?",
    ],
    "immunization_date": [
        "When did {sub} last get the {x}?", "When was {pos} last {x}?", "Date of {pos} most recent {x}?",
        "When was the {x} last given?", "Last {x}?", "When did {sub} last have a {x}?",
    ],
    "encounter_count": [
        "How many times did {sub} see the doctor in {date}?", "How many appointments did {sub} have in {date}?",
        "How many office visits were there in {date}?", "How many consultations did {sub} have in {date}?",
        "Number of doctor visits in {date}?", "How many clinic visits did {sub} make in {date}?",
        "How many times was {sub} seen in {date}?", "How many encounters in {date}?",
    ],
    "note_content": [
        "What brought {obj} in on {date}?", "Why was {sub} seen on {date}?",
        "What was the reason for {pos} appointment on {date}?", "What was {sub} complaining of on {date}?",
        "What was the presenting complaint on {date}?", "Reason for the visit on {date}?",
        "What did the doctor's note on {date} say {sub} came in for?",
    ],
    "active_medications": [
        "What meds is {sub} on?", "What tablets is {sub} taking at the moment?", "Current prescriptions?",
        "What's on {pos} medication list?", "Which drugs is {sub} taking now?", "What pills does {sub} take?",
        "List {pos} current medicines.", "What is {sub} prescribed right now?", "Any active meds?",
    ],
    "allergies": [
        "Is {sub} allergic to anything?", "Any drug allergies?", "What allergies does {sub} have?",
        "Has {sub} got any allergies?", "Any known allergies?", "What is {sub} allergic to?",
        "Allergy list?", "Does {sub} have any allergys?",
    ],
}

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def ordinal(d):
    return f"{d}{'th' if 11 <= d % 100 <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(d % 10, 'th')}"


def date_text(rng, day):
    """A day (YYYY-MM-DD) the way people write it."""
    y, m, d = int(day[:4]), int(day[5:7]), int(day[8:10])
    forms = [
        day,
        f"{MONTHS[m - 1]} {d}, {y}",
        f"{d} {MONTHS[m - 1]} {y}",
        f"{ordinal(d)} {MONTHS[m - 1]} {y}",
        f"{MONTHS[m - 1]} {ordinal(d)}, {y}",
        f"{m}/{d}/{y}",
        f"{MONTHS[m - 1][:3]} {d} {y}",
        f"the {ordinal(d)} of {MONTHS[m - 1]} {y}",
    ]
    return rng.choice(forms)


class Rec:
    __slots__ = ("rtype", "ref", "day", "ts", "status", "codes", "label", "value", "note", "rec")

    def __init__(self, rtype, rid, day, ts, status, record):
        self.rtype, self.ref, self.day, self.ts, self.status = rtype, f"{rtype}/{rid}", day, ts, status
        rec = json.loads(record)
        self.rec = rec
        code = rec.get("code") or {}
        self.codes = [c.get("code") for c in code.get("codings", []) if c.get("code")]
        text = (code.get("text") or "").strip()
        self.label = text or next((c.get("display") for c in code.get("codings", []) if c.get("display")),
                                  self.codes[0] if self.codes else "")
        self.value = number(rec.get("value"))
        if self.value is None:
            for comp in rec.get("components", []):
                v = number(comp.get("value"))
                if v is not None:
                    self.value = v
                    break
        self.note = rec.get("note")

    def unit(self):
        v = self.rec.get("value") or {}
        return v.get("unit") if v.get("kind") == "quantity" else None

    def main_code(self):
        return self.codes[0] if self.codes else None


def number(v):
    if not isinstance(v, dict):
        return None
    if v.get("kind") == "quantity":
        return v.get("value")
    if v.get("kind") == "integer":
        return float(v.get("value"))
    return None


def load(db_path):
    db = sqlite3.connect(db_path)
    patients = {pid: gender for pid, gender in db.execute("SELECT id, gender FROM patients")}
    recs = defaultdict(list)
    q = ("SELECT type, id, patient_id, date, ts, status, record FROM resources "
         "WHERE patient_id IS NOT NULL AND type IN ('Observation','Condition','Procedure','Immunization',"
         "'MedicationRequest','AllergyIntolerance','Encounter','DocumentReference') ORDER BY ts, id")
    for rtype, rid, pid, day, ts, status, record in db.execute(q):
        recs[pid].append(Rec(rtype, rid, (day or "")[:10], ts, status, record))
    return patients, recs


def chief_complaint(note):
    lines = note.splitlines()
    for i, line in enumerate(lines):
        if line.strip().lower() == "# chief complaint" and i + 1 < len(lines):
            first = lines[i + 1].strip()
            return first[2:] if first.startswith("- ") else None
    return None


class Gen:
    def __init__(self, rng, pid, gender, recs):
        self.rng, self.pid, self.recs = rng, pid, recs
        self.sub, self.pos, self.obj = {"male": ("he", "his", "him"), "female": ("she", "her", "her")}.get(
            gender, ("they", "their", "them"))
        self.codes = {c for r in recs for c in r.codes}

    def say(self, template, x="", date=""):
        q = template.replace("{x}", x).replace("{date}", date)
        q = q.replace("{sub}", self.sub).replace("{pos}", self.pos).replace("{obj}", self.obj)
        for article in ("a ", "an "):
            q = q.replace(f"Any {article}", "Any ").replace(f"any {article}", "any ")
        return q[0].upper() + q[1:]

    def q(self, kind, text, answer, evidence):
        return {"id": "", "patient": self.pid, "kind": kind, "question": text, "answer": answer,
                "evidence": [r.ref for r in evidence]}

    def series(self, rtype, codes, dated=True):
        return [r for r in self.recs if r.rtype == rtype and r.main_code() in codes and (r.day or not dated)]

    def numeric(self, kind):
        keys = list(MEASURES)
        self.rng.shuffle(keys)
        for key in keys:
            m = MEASURES[key]
            rs = [r for r in self.series("Observation", m["codes"]) if r.value is not None]
            if len(rs) < (4 if kind == "trend" else 2):
                continue
            name = self.rng.choice(m["names"])
            num = lambda r: {"type": "number", "value": r.value, "unit": r.unit()}
            if kind == "latest_value":
                last = rs[-1]
                if rs[-2].ts == last.ts:
                    continue
                return self.q(kind, self.say(self.rng.choice(T[kind]), name), num(last), [last])
            if kind == "value_on_date":
                r = self.rng.choice(rs)
                if sum(1 for o in rs if o.day == r.day) > 1:
                    continue
                text = self.say(self.rng.choice(T[kind]), name, date_text(self.rng, r.day))
                return self.q(kind, text, num(r), [r])
            if kind in ("highest", "lowest"):
                if key == "bp":
                    continue  # a panel's value is two numbers
                ext = (max if kind == "highest" else min)(rs, key=lambda r: r.value)
                if sum(1 for r in rs if r.value == ext.value) > 1:
                    continue
                return self.q(kind, self.say(self.rng.choice(T[kind]), name), num(ext), [ext])
            # trend
            first, last = rs[0], rs[-1]
            own = m.get("trend", [])
            if own and self.rng.random() < 0.5:
                text = self.say(self.rng.choice(own))
            else:
                text = self.say(self.rng.choice(T[kind]), name)
            return self.q(kind, text, {"type": "text", "value": f"{first.value} -> {last.value}"}, [first, last])
        return None

    def disorder_series(self, codes):
        rs = self.series("Condition", codes)
        return rs if rs and rs[0].label.endswith("(disorder)") else []

    def first_diagnosis(self):
        keys = list(CONDITIONS)
        self.rng.shuffle(keys)
        for key in keys:
            codes, names = CONDITIONS[key]
            rs = self.disorder_series(codes)
            if not rs:
                continue
            text = self.say(self.rng.choice(T["first_diagnosis"]), strip_article(self.rng.choice(names)))
            return self.q("first_diagnosis", text, {"type": "date", "value": rs[0].day}, [rs[0]])
        return None

    def ever_had_yes(self):
        pool = [("c", k) for k in CONDITIONS] + [("p", k) for k in PROCEDURES]
        self.rng.shuffle(pool)
        for what, key in pool:
            if what == "c":
                codes, names = CONDITIONS[key]
                rs = self.disorder_series(codes)
                tpl = T["ever_had_yes_condition"]
            else:
                codes, names = PROCEDURES[key]
                rs = self.series("Procedure", codes)
                tpl = T["ever_had_yes_procedure"]
            if not rs:
                continue
            text = self.say(self.rng.choice(tpl), self.say(self.rng.choice(names)).lower()
                            if "{pos}" in " ".join(names) else self.rng.choice(names))
            return self.q("ever_had_yes", text, {"type": "yes_no", "value": True}, [rs[-1]])
        return None

    def absent(self, kind):
        table = ABSENT_CONDITIONS if kind == "ever_had_no" else ABSENT_LABS
        rtype = "Condition" if kind == "ever_had_no" else "Observation"
        pool = list(table)
        self.rng.shuffle(pool)
        for names, codes, words in pool:
            if any(c in self.codes for c in codes):
                continue
            if any(r.rtype == rtype and any(w in r.label.lower() for w in words) for r in self.recs):
                continue
            name = self.rng.choice(names)
            if kind == "unanswerable":
                name = strip_article(name)
                answer = {"type": "not_in_record"}
            else:
                answer = {"type": "yes_no", "value": False}
            return self.q(kind, self.say(self.rng.choice(T[kind]), name), answer, [])
        return None

    def last_of(self, kind):
        table = PROCEDURES if kind == "last_procedure" else VACCINES
        rtype = "Procedure" if kind == "last_procedure" else "Immunization"
        keys = list(table)
        self.rng.shuffle(keys)
        for key in keys:
            codes, names = table[key]
            rs = self.series(rtype, codes)
            if not rs or (len(rs) > 1 and rs[-2].day == rs[-1].day):
                continue
            name = self.rng.choice(names)
            if kind == "last_procedure":
                name = self.say(name).lower() if "{pos}" in name else name
                tpl = self.rng.choice(T[kind])
                if "{pos} most recent" in tpl or "{pos} last" in tpl:
                    name = strip_article(name)
                text = self.say(tpl, name)
            else:
                text = self.say(self.rng.choice(T[kind]), name)
            return self.q(kind, text, {"type": "date", "value": rs[-1].day}, [rs[-1]])
        return None

    def encounter_count(self):
        by_year = defaultdict(list)
        for r in self.recs:
            if r.rtype == "Encounter" and r.day:
                by_year[int(r.day[:4])].append(r)
        years = sorted(y for y, rs in by_year.items() if 1 <= len(rs) <= 25)
        if not years:
            return None
        y = self.rng.choice(years)
        text = self.say(self.rng.choice(T["encounter_count"]), date=str(y))
        return self.q("encounter_count", text, {"type": "count", "value": len(by_year[y])}, by_year[y])

    def note_content(self):
        notes = [(r, chief_complaint(r.note)) for r in self.recs if r.rtype == "DocumentReference" and r.note]
        notes = [(r, c) for r, c in notes if c and r.day]
        unique = [(r, c) for r, c in notes if sum(1 for o, _ in notes if o.day == r.day) == 1]
        if not unique:
            return None
        r, c = self.rng.choice(unique)
        text = self.say(self.rng.choice(T["note_content"]), date=date_text(self.rng, r.day))
        return self.q("note_content", text, {"type": "text", "value": c}, [r])

    def active_medications(self):
        active = [r for r in self.recs if r.rtype == "MedicationRequest" and r.status == "active"]
        if not active or len(active) > 15:
            return None
        text = self.say(self.rng.choice(T["active_medications"]))
        return self.q("active_medications", text, {"type": "set", "values": [r.label for r in active]}, active)

    def allergies(self):
        allergies = [r for r in self.recs if r.rtype == "AllergyIntolerance"]
        if not allergies:
            return None
        text = self.say(self.rng.choice(T["allergies"]))
        return self.q("allergies", text, {"type": "set", "values": [r.label for r in allergies]}, allergies)

    def one(self, kind):
        if kind in ("latest_value", "value_on_date", "highest", "lowest", "trend"):
            return self.numeric(kind)
        return {
            "first_diagnosis": self.first_diagnosis,
            "ever_had_yes": self.ever_had_yes,
            "ever_had_no": lambda: self.absent("ever_had_no"),
            "unanswerable": lambda: self.absent("unanswerable"),
            "last_procedure": lambda: self.last_of("last_procedure"),
            "immunization_date": lambda: self.last_of("immunization_date"),
            "encounter_count": self.encounter_count,
            "note_content": self.note_content,
            "active_medications": self.active_medications,
            "allergies": self.allergies,
        }[kind]()


def strip_article(name):
    for a in ("a ", "an "):
        if name.startswith(a):
            return name[len(a):]
    return name


KINDS = ["latest_value", "value_on_date", "highest", "lowest", "first_diagnosis", "ever_had_yes",
         "ever_had_no", "active_medications", "allergies", "last_procedure", "immunization_date",
         "encounter_count", "trend", "note_content", "unanswerable"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", required=True, help="an ehrqa data directory with the shared Synthea data")
    ap.add_argument("--out", default=os.path.join("eval", "questions-paraphrase.jsonl"))
    ap.add_argument("--per-kind", type=int, default=50)
    ap.add_argument("--seed", type=int, default=20261130)
    args = ap.parse_args()

    merge_second_batch()
    merge_third_batch()
    patients, recs = load(os.path.join(args.data_dir, "ehrqa.sqlite"))
    missing = [p for p in FIXTURE_PATIENTS if p not in patients]
    if missing:
        sys.exit(f"{args.data_dir}: the fixture patients {missing} are not ingested")
    rng = random.Random(args.seed)
    others = sorted(p for p in patients if p not in FIXTURE_PATIENTS and recs.get(p))
    out = []
    for kind in KINDS:
        order = list(others)
        rng.shuffle(order)
        n = 0
        for pid in FIXTURE_PATIENTS + order:
            if n >= args.per_kind:
                break
            g = Gen(random.Random(f"{args.seed}/{kind}/{pid}"), pid, patients[pid], recs[pid])
            q = g.one(kind)
            if q and not any(o["patient"] == pid and o["question"] == q["question"] for o in out):
                out.append(q)
                n += 1
    for i, q in enumerate(out, 1):
        q["id"] = f"p{i:04d}"
    with open(args.out, "w", encoding="utf-8") as f:
        for q in out:
            f.write(json.dumps(q, ensure_ascii=False, separators=(",", ":")) + "\n")
    per_kind = defaultdict(int)
    for q in out:
        per_kind[q["kind"]] += 1
    n_patients = len({q["patient"] for q in out})
    print(f"{args.out}: {len(out)} questions over {n_patients} patients; "
          + ", ".join(f"{k} {per_kind[k]}" for k in KINDS))


if __name__ == "__main__":
    main()
