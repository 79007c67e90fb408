"""Image files and the other files artstyle writes."""
