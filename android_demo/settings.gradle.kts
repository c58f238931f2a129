pluginManagement {
  repositories {
    google()
    mavenCentral()
    gradlePluginPortal()
  }
}

dependencyResolutionManagement {
  repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
  repositories {
    google()
    mavenCentral()  // com.google.ai.edge.litert:* and junit:junit
  }
}

rootProject.name = "tfq-mixed-android-demo"
include(":core", ":app")
