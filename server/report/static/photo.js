// A photo larger than the server takes is scaled down on the phone (JPEG, longest side 2560 px),
// so a high-resolution camera does not make a report unsendable; smaller photos go untouched
// (the server strips their metadata). Scaling drops the photo's own EXIF position, which the
// page does not use.

export const MAX_PHOTO_BYTES = 8 * 1024 * 1024; // the server's limit (server/incidents/photos.py)
const MAX_SIDE = 2560;
const JPEG_QUALITY = 0.85;

// Resolves to a File the server accepts, or null when this photo cannot be made small enough
// (or the browser cannot decode it, e.g. HEIC outside Safari).
export async function fitPhoto(file) {
  if (file.size <= MAX_PHOTO_BYTES) return file;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return null;
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
  if (!blob || blob.size > MAX_PHOTO_BYTES) return null;
  return new File([blob], `${file.name.replace(/\.[^.]*$/, "") || "photo"}.jpg`, { type: "image/jpeg" });
}
