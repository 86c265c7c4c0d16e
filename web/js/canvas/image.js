// Loading the displayed image (served by the app's fieldmark: scheme; never a data: URL).

/** Resolves with the loaded, decoded <img> for `url`; rejects with an Error naming the url. */
export function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.decoding = 'async';
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`Could not load image ${url}`));
    img.src = url;
  });
}

/** The url without its query and fragment: the same picture shown with other display settings. */
export function imageKey(url) {
  return url.split(/[?#]/)[0];
}
