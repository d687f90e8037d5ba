// A few sentences of our own (no copied dataset text) for the stories260K fine-tuning checks.
export const STORY_PAIRS: readonly { prompt: string; response: string }[] = [
  { prompt: 'Tom had a red kite.', response: ' The kite flew over the blue lake every windy day.' },
  {
    prompt: 'Mia found a small shell.',
    response: ' The shell sang a soft song when she held it to her ear.',
  },
  {
    prompt: 'The old dog liked the sun.',
    response: ' He slept on the warm steps every windy day.',
  },
  { prompt: 'Ben baked a big cake.', response: ' The cake was pink and had seven candles on top.' },
];
